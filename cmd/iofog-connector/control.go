package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// controlSocket is the name of the local control channel in the data dir.
// It is a unix socket of mode 0600: only the daemon's user can stop it or
// read its state.
const controlSocket = "iofog-connector.sock"

func controlPath(dataDir string) string { return filepath.Join(dataDir, controlSocket) }

// listenControl opens the control socket, replacing a stale one left by a
// daemon that died.
func listenControl(dataDir string) (net.Listener, error) {
	path := controlPath(dataDir)
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

// controlStatus is the state the control channel reports.
type controlStatus struct {
	Version           string           `json:"version"`
	PID               int              `json:"pid"`
	Uptime            string           `json:"uptime"`
	Dev               bool             `json:"dev"`
	API               string           `json:"api"`
	DataDir           string           `json:"dataDir"`
	Transport         string           `json:"transport"`
	Transports        []string         `json:"transports"`
	FreePorts         int              `json:"freePorts"`
	AgentLinks        int              `json:"agentLinks"`
	PublicConnections int64            `json:"publicConnections"`
	Mappings          []controlMapping `json:"mappings"`
	Goroutines        int              `json:"goroutines"` // for leak checks (make soak)
}

type controlMapping struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Transport   string `json:"transport"`
	Port1       int    `json:"port1"`
	Port2       int    `json:"port2"`
	State1      string `json:"state1"`
	State2      string `json:"state2"`
	Links       int    `json:"links"`
	Connections int64  `json:"connections"`
	Total       int64  `json:"total"`
	Down        string `json:"down,omitempty"`
	Error       string `json:"error,omitempty"`
	Refused     int64  `json:"refused"`
	Failed      int64  `json:"failedHandshakes"`
}

func (d *daemon) snapshot() controlStatus {
	sum := d.mgr.Summary()
	cs := controlStatus{
		Version: version, PID: os.Getpid(), Uptime: time.Since(d.started).Round(time.Second).String(),
		Dev: d.settings.Dev, API: d.settings.APIAddress, DataDir: d.settings.DataDir,
		Transport: d.settings.Transport, Transports: d.transports,
		FreePorts: sum.FreePorts, AgentLinks: sum.AgentLinks, PublicConnections: sum.PublicConns,
		Mappings: []controlMapping{},
	}
	cs.Goroutines = runtime.NumGoroutine()
	for _, st := range d.mgr.List() {
		cs.Mappings = append(cs.Mappings, controlMapping{
			ID: st.ID, Type: st.Type, Transport: st.Transport, Port1: st.Port1, Port2: st.Port2,
			State1: activeText(st.Side1.Active), State2: activeText(st.Side2.Active),
			Links: st.Side1.Links + st.Side2.Links, Connections: st.Active, Total: st.Total, Down: st.Down(),
			Error: st.Problem(), Refused: st.Refused, Failed: st.Side1.Failed + st.Side2.Failed,
		})
	}
	return cs
}

func activeText(b bool) string {
	if b {
		return "Active"
	}
	return "Inactive"
}

func (d *daemon) statusText() string {
	var b strings.Builder
	writeStatus(&b, d.snapshot())
	return b.String()
}

// writeStatus renders cs for an operator.
func writeStatus(w io.Writer, cs controlStatus) {
	fmt.Fprintf(w, "iofog-connector %s (pid %d), up %s\n", cs.Version, cs.PID, cs.Uptime)
	fmt.Fprintf(w, "API:                %s (dev mode: %v)\n", cs.API, cs.Dev)
	fmt.Fprintf(w, "Data dir:           %s\n", cs.DataDir)
	fmt.Fprintf(w, "Transports:         %s (default %s)\n", strings.Join(cs.Transports, ", "), cs.Transport)
	fmt.Fprintf(w, "Free ports:         %d\n", cs.FreePorts)
	fmt.Fprintf(w, "Agent links:        %d\n", cs.AgentLinks)
	fmt.Fprintf(w, "Public connections: %d\n", cs.PublicConnections)
	fmt.Fprintf(w, "Mappings:           %d\n", len(cs.Mappings))
	if len(cs.Mappings) == 0 {
		return
	}
	fmt.Fprintf(w, "  %-36s  %-7s  %-9s  %-16s  %-17s  %5s  %5s  %7s\n", "ID", "TYPE", "TRANSPORT", "PORTS", "STATE", "LINKS", "CONNS", "TOTAL")
	for _, m := range cs.Mappings {
		state := m.State1 + "/" + m.State2
		switch {
		case m.Down != "":
			state = "DOWN"
		case m.Error != "":
			state = "ERROR"
		}
		fmt.Fprintf(w, "  %-36s  %-7s  %-9s  %-16s  %-17s  %5d  %5d  %7d\n", m.ID, m.Type, m.Transport,
			fmt.Sprintf("%d,%d", m.Port1, m.Port2), state, m.Links, m.Connections, m.Total)
		if m.Down != "" {
			fmt.Fprintf(w, "      down: %s\n", m.Down)
		} else if m.Error != "" {
			fmt.Fprintf(w, "      error: %s\n", m.Error)
		}
		if m.Refused > 0 || m.Failed > 0 {
			fmt.Fprintf(w, "      refused public clients: %d, failed agent handshakes: %d\n", m.Refused, m.Failed)
		}
	}
}

// Bounds of the control socket's HTTP server. Only the daemon's user can
// reach the socket, but a stuck or buggy client must not hold the daemon.
const (
	controlMaxBody    = 64 << 10
	controlMaxHeaders = 16 << 10
)

// controlHandler routes the control socket: GET /status, POST /stop,
// POST /reload (reload.go) and the mapping routes of controlmap.go.
func controlHandler(d *daemon, stop func(), log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		controlJSON(w, http.StatusOK, d.snapshot())
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		log.Info("stop requested on the control socket")
		fmt.Fprintln(w, "stopping")
		go stop()
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		res, err := d.reload("control socket")
		if err != nil {
			controlJSON(w, http.StatusUnprocessableEntity, controlErrorBody{Error: err.Error()})
			return
		}
		controlJSON(w, http.StatusOK, res)
	})
	routeMappings(mux, d, log) // controlmap.go
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, controlMaxBody)
		mux.ServeHTTP(w, r)
	})
}

// serveControl answers the control routes on ln until ctx is done.
func serveControl(ctx context.Context, ln net.Listener, d *daemon, stop func(), log *slog.Logger) error {
	srv := &http.Server{
		Handler:           controlHandler(d, stop, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second, // an add may wait for the store's fsync
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    controlMaxHeaders,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
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

// controlJSON writes v as the JSON answer with status code.
func controlJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// controlErrorBody is the JSON of every error answer of the control
// socket.
type controlErrorBody struct {
	Error string `json:"error"`
}

// errNotRunning is wrapped by the control client when no daemon answers.
var errNotRunning = errors.New("iofog-connector is not running")

// controlAPIError is a control answer with an error status.
type controlAPIError struct {
	Status  int
	Message string
}

func (e *controlAPIError) Error() string { return e.Message }

// controlConn is the CLI's side of the control socket of one data dir.
type controlConn struct {
	dataDir string
	// start is the command line that starts a daemon on this data dir,
	// for the error when none runs.
	start  string
	client *http.Client
}

// newControlConn returns a client of the daemon whose data dir is dataDir.
// start is the command that would start it (for error messages); empty
// means "iofog-connector start".
func newControlConn(dataDir, start string) *controlConn {
	path := controlPath(dataDir)
	if start == "" {
		start = "iofog-connector start"
	}
	return &controlConn{dataDir: dataDir, start: start, client: &http.Client{
		Timeout: 90 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return new(net.Dialer).DialContext(ctx, "unix", path)
			},
			DisableKeepAlives: true,
		},
	}}
}

// call sends a request with in (when not nil) as its JSON body and decodes
// a 2xx JSON answer into out (when not nil). An error answer is a
// *controlAPIError; no answer at all wraps errNotRunning.
func (c *controlConn) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://control"+path, body)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control socket: reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e controlErrorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &controlAPIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control socket: bad answer: %w", err)
	}
	return nil
}

// dialError explains a failed request: no daemon, or a socket this user
// may not use.
func (c *controlConn) dialError(err error) error {
	path := controlPath(c.dataDir)
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("control socket %s: permission denied: run this command as the daemon's user (or with sudo)", path)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTSOCK):
		return fmt.Errorf("%w with data dir %s (nothing answers on %s): start it with: %s", errNotRunning, c.dataDir, path, c.start)
	}
	return fmt.Errorf("%w with data dir %s? no answer on %s: %v", errNotRunning, c.dataDir, path, err)
}

func (c *controlConn) status(ctx context.Context) (controlStatus, error) {
	var cs controlStatus
	return cs, c.call(ctx, http.MethodGet, "/status", nil, &cs)
}

// stop asks the daemon to stop and waits up to timeout for it to go away.
func (c *controlConn) stop(ctx context.Context, timeout time.Duration) error {
	if err := c.call(ctx, http.MethodPost, "/stop", nil, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("unix", controlPath(c.dataDir), time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("iofog-connector did not stop within %s", timeout)
}
