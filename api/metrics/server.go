package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// MaxConns bounds the connections the metrics listener serves at once;
// further ones wait in the kernel's accept queue.
const MaxConns = 16

// Handler returns the HTTP handler of the metrics: GET (or HEAD) [Path]
// answers with the text exposition format; any other path is 404 and any
// other method 405.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, m.handler)
	return mux
}

// Serve answers scrapes on ln, over plain HTTP, until ctx is done, then
// shuts down for up to five seconds; it returns nil after a shutdown
// caused by ctx. Requests are bounded: 5 s to send the header, 8 KiB of
// header, 10 s to read the request, 30 s to write the answer, [MaxConns]
// connections at once and two scrapes at once (more get 503).
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(ln, MaxConns)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve: %w", serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}
