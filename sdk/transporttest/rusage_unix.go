//go:build unix

package transporttest

import (
	"syscall"
	"time"
)

// processCost returns the CPU time the process has used and the context
// switches its threads made (voluntary and involuntary); ok is false when
// they cannot be read.
func processCost() (cpu time.Duration, switches int64, ok bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), int64(ru.Nvcsw + ru.Nivcsw), true
}
