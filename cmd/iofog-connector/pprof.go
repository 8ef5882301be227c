package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// pprofEnv names the environment variable that turns on Go's profiling
// endpoints (net/http/pprof) in the daemon and in the agent, for
// performance work: IOFOG_CONNECTOR_PPROF=127.0.0.1:6060. It is off when
// unset, and only a loopback address is accepted: profiles expose the
// process's memory layout and goroutine stacks, so they never face the
// network.
const pprofEnv = "IOFOG_CONNECTOR_PPROF"

// startPprof serves the profiling endpoints on the loopback address named
// by pprofEnv until ctx is done. It returns an error, and starts nothing,
// when the address is not loopback or cannot be bound.
func startPprof(ctx context.Context, log *slog.Logger) error {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return nil
	}
	if err := checkPprofAddr(addr); err != nil {
		return err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", pprofEnv, err)
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

// checkPprofAddr accepts only a literal loopback host.
func checkPprofAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not HOST:PORT: %w", pprofEnv, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: %q: profiling is served on a loopback address only (127.0.0.1 or ::1)", pprofEnv, addr)
	}
	return nil
}
