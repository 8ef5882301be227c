package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

// Core is what the API needs from the mapping manager.
type Core interface {
	Add(ctx context.Context, req core.AddRequest) (core.Mapping, error)
	Remove(ctx context.Context, id string) error
	Status(id string) (core.MappingStatus, error)
	Summary() core.Summary
}

// DefaultMaxBodyBytes bounds request bodies when Config.MaxBodyBytes is
// zero.
const DefaultMaxBodyBytes = 64 << 10

// Config configures a [Server].
type Config struct {
	// Core serves the mappings. Required.
	Core Core
	// Version is reported by status and commandline version.
	Version string
	// Stop is called (once, after answering) by `commandline stop` from
	// the local host. Nil refuses stop.
	Stop func()
	// StatusText renders `commandline status`. Nil means a one-line
	// summary.
	StatusText func() string
	// MaxBodyBytes bounds request bodies. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives the server's logs. Nil means discard.
	Logger *slog.Logger
	// Now returns the time. Nil means time.Now.
	Now func() time.Time
}

// Server is the REST API. Create it with [New].
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the API server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: sdk.Logger(cfg.Logger), mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /api/v2/mapping/add", s.add)
	s.mux.HandleFunc("POST /api/v2/mapping/remove", s.remove)
	s.mux.HandleFunc("POST /api/v2/status", s.status)
	s.mux.HandleFunc("POST /api/v2/commandline", s.commandline)
	s.routeHealth() // GET /healthz, /readyz (health.go)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, fmt.Errorf("%w: %s %s (every call is a POST under /api/v2/)", errNoRoute, r.Method, r.URL.Path))
	})
	return s
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve answers on ln until ctx is done, then shuts down gracefully for up
// to five seconds. With tlsCfg not nil it serves HTTPS. It returns nil
// after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

var _ Core = (*core.Manager)(nil)
