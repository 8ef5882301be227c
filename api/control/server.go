package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

// SocketName is the name of the control socket in the data dir.
const SocketName = "iofog-connector.sock"

// Path returns the control socket of the daemon whose data dir is dataDir.
func Path(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Bounds of the control socket's HTTP server.
const (
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes = 64 << 10
	// MaxHeaderBytes bounds request headers.
	MaxHeaderBytes = 16 << 10
)

// Listen opens the control socket of dataDir (mode 0600), replacing a
// stale one left by a daemon that died. It fails when another daemon
// answers on it.
func Listen(dataDir string) (net.Listener, error) {
	path := Path(dataDir)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another daemon is running", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Core is what the control routes need from the mapping manager.
// *core.Manager has it.
type Core interface {
	Add(ctx context.Context, req core.AddRequest) (core.Mapping, error)
	Remove(ctx context.Context, id string) error
	Status(id string) (core.MappingStatus, error)
	List() []core.MappingStatus
}

// ReloadResult is what a reload changed: the answer of POST /reload.
type ReloadResult struct {
	// Changed lists what changed; empty when nothing did.
	Changed []string `json:"changed"`
	// NeedsRestart lists the changed settings a reload does not apply.
	NeedsRestart []RestartKey `json:"needsRestart"`
}

// RestartKey is a setting that changed but applies only on a restart.
type RestartKey struct {
	Key     string `json:"key"`
	Running string `json:"running"`
	New     string `json:"new"`
}

// MappingList is the answer of GET /mappings and what `mapping ls --json`
// prints.
type MappingList struct {
	Mappings []status.Mapping `json:"mappings"`
}

// Config configures a [Server].
type Config struct {
	// Core serves the mapping routes. Required.
	Core Core
	// Status composes the answer of GET /status. Required.
	Status func() status.Daemon
	// Stop is called (once per request, after answering) by POST /stop.
	// Required.
	Stop func()
	// Reload reloads the daemon's settings for POST /reload; an error
	// means nothing changed. Nil answers 501.
	Reload func(ctx context.Context) (ReloadResult, error)
	// Logger receives the server's logs. Nil means discard.
	Logger *slog.Logger
}

// Server is the control socket's HTTP server. Create it with [NewServer].
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
}

// NewServer returns the control server of cfg.
func NewServer(cfg Config) *Server {
	s := &Server{cfg: cfg, log: sdk.Logger(cfg.Logger)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.cfg.Status())
	})
	mux.HandleFunc("POST /stop", s.stop)
	mux.HandleFunc("POST /reload", s.reload)
	mux.HandleFunc("GET /mappings", s.list)
	mux.HandleFunc("GET /mapping", s.show)
	mux.HandleFunc("POST /mapping", s.add)
	mux.HandleFunc("DELETE /mapping", s.remove)
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		mux.ServeHTTP(w, r)
	})
	return s
}

// Handler returns the routes, with the body bound.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on ln until ctx is done, then shuts down gracefully for up
// to three seconds. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second, // an add may wait for the store's fsync
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("control socket: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

func (s *Server) stop(w http.ResponseWriter, _ *http.Request) {
	s.log.Info("stop requested on the control socket")
	fmt.Fprintln(w, "stopping")
	go s.cfg.Stop()
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Reload == nil {
		writeJSON(w, http.StatusNotImplemented, errorBody{Error: "reload is not available"})
		return
	}
	res, err := s.cfg.Reload(r.Context())
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	out := MappingList{Mappings: []status.Mapping{}}
	for _, st := range s.cfg.Core.List() {
		out.Mappings = append(out.Mappings, status.MappingOf(st).Public())
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Core.Status(r.URL.Query().Get("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, status.MappingOf(st))
}

func (s *Server) add(w http.ResponseWriter, r *http.Request) {
	var req core.AddRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields() // a field this daemon does not know must not be dropped silently
	if err := dec.Decode(&req); err != nil {
		fail(w, fmt.Errorf("%w: the request is not a mapping this daemon understands (is the CLI newer than the daemon?): %w", core.ErrInvalid, err))
		return
	}
	mp, err := s.cfg.Core.Add(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	s.log.Debug("mapping added on the control socket", sdk.AttrMappingID, mp.ID)
	st, err := s.cfg.Core.Status(mp.ID)
	if err != nil { // removed at once by someone else
		st = core.MappingStatus{Mapping: mp}
	}
	writeJSON(w, http.StatusOK, status.MappingOf(st))
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if err := s.cfg.Core.Remove(r.Context(), id); err != nil {
		fail(w, err)
		return
	}
	s.log.Debug("mapping removed on the control socket", sdk.AttrMappingID, id)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "removed": true})
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON writes v as the JSON answer with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// fail answers err with the status its kind maps to.
func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, core.ErrInvalid), errors.Is(err, core.ErrUnknownTransport):
		code = http.StatusBadRequest
	case errors.Is(err, core.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, core.ErrDuplicate):
		code = http.StatusConflict
	case errors.Is(err, core.ErrNoFreePort):
		code = http.StatusInsufficientStorage
	case errors.Is(err, core.ErrClosed):
		code = http.StatusServiceUnavailable
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = http.StatusRequestEntityTooLarge
	}
	writeJSON(w, code, errorBody{Error: err.Error()})
}

var _ Core = (*core.Manager)(nil)
