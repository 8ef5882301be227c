package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/api/status"
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
	// Status composes the daemon's whole status (package status) for
	// `commandline status`, which prints it as `iofog-connector status`
	// does. Nil means a one-line summary.
	Status func() status.Daemon
	// MaxBodyBytes bounds request bodies. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives the server's logs. Nil means discard.
	Logger *slog.Logger
	// Now returns the time. Nil means time.Now.
	Now func() time.Time
	// Token, when not empty, must come with every request as
	// "Authorization: Bearer TOKEN"; it is compared in constant time and a
	// request without it or with another gets 401 and a JSON error. Empty
	// means no token is asked for (the legacy Controller sends none).
	Token string
	// RequireClientCert refuses (401) every request that did not arrive
	// over TLS with a verified client certificate. The TLS config given
	// to [Server.Serve] must verify client certificates
	// (tls.RequireAndVerifyClientCert); this is a second, fail-closed
	// check. False means no client certificate is asked for here.
	RequireClientCert bool
}

// Server is the REST API. Create it with [New].
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	cop     *http.CrossOriginProtection
	routes  map[string]bool
	// tokenSum is the SHA-256 of the API token; nil when no token is
	// asked for. It is swapped by [Server.SetToken].
	tokenSum atomic.Pointer[[32]byte]
}

// New returns the API server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: sdk.Logger(cfg.Logger), mux: http.NewServeMux(), cop: http.NewCrossOriginProtection(), routes: map[string]bool{}}
	s.SetToken(cfg.Token)
	for route, h := range map[string]http.HandlerFunc{
		"/api/v2/mapping/add":    s.add,
		"/api/v2/mapping/remove": s.remove,
		"/api/v2/status":         s.status,
		"/api/v2/commandline":    s.commandline,
	} {
		s.routes[route] = true
		s.mux.HandleFunc(http.MethodPost+" "+route, h)
	}
	s.routeHealth() // GET /healthz, /readyz (health.go)
	s.mux.HandleFunc("/", s.noRoute)
	s.handler = s.guard(s.mux)
	return s
}

// noRoute answers what no route took: 405 naming POST for a known path,
// 404 otherwise, both as JSON (the mux's own answers are plain text).
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	if s.routes[r.URL.Path] {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, r, fmt.Errorf("%w: %s %s (use POST)", errMethod, clip(r.Method), r.URL.Path))
		return
	}
	s.fail(w, r, fmt.Errorf("%w: %s %s (every call is a POST under /api/v2/)", errNoRoute, clip(r.Method), clip(strconv.Quote(r.URL.Path))))
}

// Handler returns the HTTP handler of the API, with its authentication,
// path and cross-origin checks.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on ln until ctx is done, then shuts down gracefully for up
// to five seconds. With tlsCfg not nil it serves HTTPS. It returns nil
// after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	srv := &http.Server{
		Handler:           s.handler,
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
