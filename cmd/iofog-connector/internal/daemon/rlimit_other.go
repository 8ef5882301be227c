//go:build !unix

package daemon

import "log/slog"

// raiseOpenFilesLimit does nothing where there is no RLIMIT_NOFILE.
func raiseOpenFilesLimit(*slog.Logger) {}
