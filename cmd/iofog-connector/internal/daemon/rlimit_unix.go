//go:build unix

package daemon

import (
	"log/slog"
	"syscall"
)

// lowOpenFiles is the open-files limit below which start-up warns: every
// agent link, public client and relayed stream holds a descriptor.
const lowOpenFiles = 4096

// raiseOpenFilesLimit raises the soft limit on open files to the hard
// limit and logs both. (Go's os package already does the raise at init on
// most Unix systems; doing it here makes it explicit and logs the ceiling
// the daemon runs under.) Running out of descriptors is survived (accept
// loops back off), but a higher limit makes it rarer.
func raiseOpenFilesLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("reading the open files limit failed", "err", err)
		return
	}
	before := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("raising the open files limit failed", "soft", before, "hard", lim.Max, "err", err)
			return
		}
	}
	log.Info("open files limit", "soft", lim.Cur, "hard", lim.Max, "soft_before", before)
	if lim.Cur < lowOpenFiles {
		log.Warn("the open files limit is low; each agent link and public client takes a descriptor (raise it with ulimit -n, LimitNOFILE= or prlimit)", "soft", lim.Cur, "recommended", lowOpenFiles)
	}
}
