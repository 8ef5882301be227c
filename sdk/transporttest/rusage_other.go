//go:build !unix

package transporttest

import "time"

// processCost is not available here: ok is false.
func processCost() (cpu time.Duration, switches int64, ok bool) { return 0, 0, false }
