package main

import (
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

// serveControl answers GET /status and POST /stop on ln until ctx is done.
func serveControl(ctx context.Context, ln net.Listener, d *daemon, stop func(), log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.snapshot())
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		log.Info("stop requested on the control socket")
		fmt.Fprintln(w, "stopping")
		go stop()
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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

// controlClient talks to the daemon whose data dir is dataDir.
func controlClient(dataDir string) *http.Client {
	path := controlPath(dataDir)
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, "unix", path)
		}},
	}
}

// errNotRunning is returned by the control client when no daemon answers.
var errNotRunning = errors.New("iofog-connector is not running")

func controlStatusOf(ctx context.Context, dataDir string) (controlStatus, error) {
	var cs controlStatus
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://control/status", nil)
	resp, err := controlClient(dataDir).Do(req)
	if err != nil {
		return cs, fmt.Errorf("%w (no answer on %s)", errNotRunning, controlPath(dataDir))
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
		return cs, fmt.Errorf("control socket: bad answer: %w", err)
	}
	return cs, nil
}

// controlStop asks the daemon to stop and waits up to timeout for it to
// go away.
func controlStop(ctx context.Context, dataDir string, timeout time.Duration) error {
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://control/stop", nil)
	resp, err := controlClient(dataDir).Do(req)
	if err != nil {
		return fmt.Errorf("%w (no answer on %s)", errNotRunning, controlPath(dataDir))
	}
	resp.Body.Close()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("unix", controlPath(dataDir), time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("iofog-connector did not stop within %s", timeout)
}
