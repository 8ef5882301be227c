package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
)

// memCore keeps mappings in memory; the control routes are what is
// tested, the real manager is covered by the e2e tests of the binary.
type memCore struct {
	mu sync.Mutex
	m  map[string]core.MappingStatus
}

func (c *memCore) Add(_ context.Context, req core.AddRequest) (core.Mapping, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case req.Type != core.TypePublic && req.Type != core.TypePrivate:
		return core.Mapping{}, fmt.Errorf("%w: type %q", core.ErrInvalid, req.Type)
	case req.ID == "full":
		return core.Mapping{}, fmt.Errorf("%w: 2 wanted", core.ErrNoFreePort)
	case c.m[req.ID].ID != "":
		return core.Mapping{}, core.ErrDuplicate
	}
	port := 7000 + 2*len(c.m)
	mp := core.Mapping{ID: req.ID, Type: req.Type, Port1: port, Port2: port + 1, Passcode1: "pass-" + req.ID,
		Transport: "tcp", MaxConnections1: req.MaxConnections1, IdleTimeout: req.IdleTimeout}
	c.m[req.ID] = core.MappingStatus{Mapping: mp, Side1: core.SideStatus{Port: port}, Side2: core.SideStatus{Port: port + 1, Active: true}}
	return mp, nil
}

func (c *memCore) Remove(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok {
		return fmt.Errorf("%w: %s", core.ErrNotFound, id)
	}
	delete(c.m, id)
	return nil
}

func (c *memCore) Status(id string) (core.MappingStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[id]
	if !ok {
		return st, fmt.Errorf("%w: %s", core.ErrNotFound, id)
	}
	return st, nil
}

func (c *memCore) List() []core.MappingStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []core.MappingStatus
	for _, st := range c.m {
		out = append(out, st)
	}
	return out
}

// world is a control server on a real unix socket in a temp dir, and a
// client of it.
type world struct {
	dir    string
	core   *memCore
	client *Client
	stops  chan struct{}
	cancel context.CancelFunc
	done   chan error
}

// reloadFunc is the reload the servers of these tests run.
type reloadFunc func(context.Context) (ReloadResult, error)

func start(t *testing.T, reload reloadFunc) *world {
	t.Helper()
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{dir: dir, core: &memCore{m: map[string]core.MappingStatus{}}, stops: make(chan struct{}, 4), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	srv := NewServer(Config{
		Core: w.core,
		Status: func() status.Daemon {
			return status.Daemon{Version: "t", PID: 1, Mappings: []status.Row{}}
		},
		Stop:   func() { w.stops <- struct{}{}; cancel() },
		Reload: reload,
	})
	go func() { w.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its ctx ended")
		}
	})
	w.client = NewClient(dir, "")
	return w
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, want a socket of 0600", fi.Mode())
	}
	go func() { // answer the liveness dial of the second Listen
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := Listen(dir); err == nil || !strings.Contains(err.Error(), "another daemon is running") {
		t.Fatalf("a second Listen while one answers: %v", err)
	}
	// A stale socket file (a daemon that died) is replaced.
	stale := t.TempDir()
	if err := os.WriteFile(Path(stale), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln2, err := Listen(stale)
	if err != nil {
		t.Fatalf("a stale socket file is not replaced: %v", err)
	}
	ln2.Close()
}

func TestMappingRoutes(t *testing.T) {
	w := start(t, nil)
	ctx := ctxT(t)
	c := w.client
	m, err := c.Add(ctx, core.AddRequest{ID: "web", Type: core.TypePublic, MaxConnections1: 8, IdleTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "web" || m.Passcode1 != "pass-web" || m.MaxConnections1 != 8 || m.IdleTimeoutMs != 2000 || m.State != status.StateWaiting {
		t.Fatalf("add answered %+v", m)
	}
	if _, err := c.Add(ctx, core.AddRequest{ID: "db", Type: core.TypePrivate}); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Mappings(ctx)
	if err != nil || len(ms) != 2 {
		t.Fatalf("ls: %v %+v", err, ms)
	}
	for _, m := range ms {
		if m.Passcode1 != "" || m.Passcode2 != "" {
			t.Fatalf("ls shows a passcode: %+v", m)
		}
	}
	if m, err := c.Mapping(ctx, "web"); err != nil || m.Passcode1 != "pass-web" || m.Port2 != m.Port1+1 {
		t.Fatalf("show: %v %+v", err, m)
	}
	tests := []struct {
		name string
		call func() error
		code int
	}{
		{"duplicate", func() error { _, err := c.Add(ctx, core.AddRequest{ID: "web", Type: core.TypePublic}); return err }, http.StatusConflict},
		{"invalid", func() error { _, err := c.Add(ctx, core.AddRequest{ID: "x", Type: "weird"}); return err }, http.StatusBadRequest},
		{"no ports", func() error { _, err := c.Add(ctx, core.AddRequest{ID: "full", Type: core.TypePublic}); return err }, http.StatusInsufficientStorage},
		{"show unknown", func() error { _, err := c.Mapping(ctx, "nope"); return err }, http.StatusNotFound},
		{"rm unknown", func() error { return c.Remove(ctx, "nope") }, http.StatusNotFound},
		{"reload unavailable", func() error { _, err := c.Reload(ctx); return err }, http.StatusNotImplemented},
	}
	for _, tt := range tests {
		var ae *AnswerError
		if err := tt.call(); !errors.As(err, &ae) || ae.Status != tt.code || ae.Message == "" {
			t.Errorf("%s: %v (%+v), want an answer of %d", tt.name, err, ae, tt.code)
		}
	}
	if err := c.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if ms, err := c.Mappings(ctx); err != nil || len(ms) != 1 || ms[0].ID != "db" {
		t.Fatalf("ls after rm: %v %+v", err, ms)
	}
}

// raw sends a raw HTTP request over the socket and returns the status and
// body of the answer.
func raw(t *testing.T, dir, req string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("unix", Path(dir), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go io.WriteString(conn, req) // a refused body is not read to its end
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBounds: a body beyond 64 KiB is refused with 413, a field this
// daemon does not know with 400, and a client that sends nothing is cut
// off after the header timeout.
func TestBounds(t *testing.T) {
	w := start(t, nil)
	big := `{"ID":"` + strings.Repeat("x", MaxBodyBytes) + `","Type":"public"}`
	code, body := raw(t, w.dir, fmt.Sprintf("POST /mapping HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(big), big))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"error"`) {
		t.Fatalf("oversized body: %d %s", code, body)
	}
	unknown := `{"Type":"public","Surprise":1}`
	code, body = raw(t, w.dir, fmt.Sprintf("POST /mapping HTTP/1.1\r\nHost: c\r\nContent-Length: %d\r\n\r\n%s", len(unknown), unknown))
	if code != http.StatusBadRequest || !strings.Contains(body, "is the CLI newer than the daemon?") {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	code, _ = raw(t, w.dir, "GET /nothing HTTP/1.1\r\nHost: c\r\n\r\n")
	if code != http.StatusNotFound {
		t.Fatalf("unknown route: %d", code)
	}
	conn, err := net.Dial("unix", Path(w.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	began := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent client was not cut off: %v after %s", err, time.Since(began))
	}
}

func TestStatusReloadStop(t *testing.T) {
	var fail atomic.Bool
	w := start(t, func(context.Context) (ReloadResult, error) {
		if fail.Load() {
			return ReloadResult{}, errors.New("settings: bad JSON")
		}
		return ReloadResult{Changed: []string{"log-level info -> debug"}, NeedsRestart: []RestartKey{{Key: "dev", Running: "true", New: "false"}}}, nil
	})
	ctx := ctxT(t)
	d, err := w.client.Status(ctx)
	if err != nil || d.Version != "t" || d.Mappings == nil {
		t.Fatalf("status: %v %+v", err, d)
	}
	res, err := w.client.Reload(ctx)
	if err != nil || len(res.Changed) != 1 || res.NeedsRestart[0].Key != "dev" {
		t.Fatalf("reload: %v %+v", err, res)
	}
	fail.Store(true)
	var ae *AnswerError
	if _, err := w.client.Reload(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || ae.Message != "settings: bad JSON" {
		t.Fatalf("failed reload: %v", err)
	}
	// Stop: the daemon is asked once and the client waits until the
	// socket is gone (the server's Stop ends Serve, which closes it).
	if err := w.client.Stop(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.stops:
	default:
		t.Fatal("Stop was not called")
	}
	if _, err := w.client.Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status after stop: %v", err)
	}
}

func TestNotRunning(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c := NewClient(dir, "iofog-connector start --data-dir "+dir)
	_, err := c.Status(ctxT(t))
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no daemon: %v", err)
	}
	for _, want := range []string{"with data dir " + dir, Path(dir), "start it with: iofog-connector start --data-dir " + dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if err := NewClient(dir, "").Remove(ctxT(t), "x"); err == nil || !strings.HasSuffix(err.Error(), "start it with: iofog-connector start") {
		t.Fatalf("default start hint: %v", err)
	}
}
