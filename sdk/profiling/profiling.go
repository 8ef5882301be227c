// Package profiling serves Go's profiling endpoints (net/http/pprof) on a
// loopback address, for performance work on the daemon, the agent and
// plugin processes. Profiles expose the process's memory layout and
// goroutine stacks, so they never face the network: only a literal
// loopback address is accepted.
//
// This package is a kit, not part of the stable contract (see "Stability"
// in package sdk): transports and tools may use it, and any release may
// change its API; make api-check reports such changes for the release
// notes.
package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// CheckAddr accepts only HOST:PORT with a literal loopback host.
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: profiling is served on a loopback address only (127.0.0.1 or ::1)", addr)
	}
	return nil
}

// Start serves the profiling endpoints under /debug/pprof/ on addr until
// ctx is done. It returns an error, and starts nothing, when addr is not
// loopback (see [CheckAddr]) or cannot be bound. It logs a warning that
// the endpoints are on, with their URL.
func Start(ctx context.Context, addr string, log *slog.Logger) error {
	log = sdk.Logger(log)
	if err := CheckAddr(addr); err != nil {
		return err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiling endpoint stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { srv.Close() })
	log.Warn("Go profiling endpoints are on (for performance work only)", "pprof", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}
