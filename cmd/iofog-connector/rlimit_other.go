//go:build !unix

package main

import "log/slog"

// raiseOpenFilesLimit does nothing where there is no RLIMIT_NOFILE.
func raiseOpenFilesLimit(*slog.Logger) {}
