package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/iofog/iofog-connector/sdk/profiling"
)

// pprofEnv names the environment variable that turns on Go's profiling
// endpoints (net/http/pprof) in the daemon and in the agent, for
// performance work: IOFOG_CONNECTOR_PPROF=127.0.0.1:6060. It is off when
// unset, and only a loopback address is accepted (sdk/profiling).
const pprofEnv = "IOFOG_CONNECTOR_PPROF"

// startPprof serves the profiling endpoints on the address pprofEnv names
// until ctx is done; nothing when it is unset.
func startPprof(ctx context.Context, log *slog.Logger) error {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return nil
	}
	if err := profiling.Start(ctx, addr, log); err != nil {
		return fmt.Errorf("%s: %w", pprofEnv, err)
	}
	return nil
}
