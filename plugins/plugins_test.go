package plugins_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/plugins"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// buildExample builds the example WebSocket plugin into a fresh directory
// and returns that directory.
func buildExample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "iofog-transport-websocket"), "../examples/websocket-transport")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"iofog-transport-b":  0o755,
		"iofog-transport-a":  0o755,
		"iofog-transport-nx": 0o644, // not executable
		"other-binary":       0o755,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "iofog-transport-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := plugins.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "iofog-transport-a"), filepath.Join(dir, "iofog-transport-b")}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Discover = %v, want %v", got, want)
	}
	if got, err := plugins.Discover(""); err != nil || got != nil {
		t.Fatalf("Discover(\"\") = %v, %v; want nothing", got, err)
	}
}

func TestIncompatiblePluginRefused(t *testing.T) {
	dir := t.TempDir()
	// A plugin speaking transport protocol 99 (go-plugin handshake line).
	script := "#!/bin/sh\necho '1|99|tcp|127.0.0.1:1|grpc'\nexec sleep 30\n"
	path := filepath.Join(dir, "iofog-transport-future")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := plugins.Start(ctx, path, plugins.Config{})
	if err == nil {
		tr.Close()
		t.Fatal("a plugin speaking protocol 99 was accepted")
	}
	if !errors.Is(err, sdk.ErrIncompatible) || !strings.Contains(err.Error(), "incompatible SDK") {
		t.Fatalf("err = %v, want sdk.ErrIncompatible saying the SDK is incompatible", err)
	}
}

func TestLoadedPluginConformance(t *testing.T) {
	dir := buildExample(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ts, err := plugins.Load(ctx, dir, plugins.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer plugins.CloseAll(ts)
	if len(ts) != 1 || ts[0].Name() != "websocket" || ts[0].Info().SDKVersion != sdk.Version {
		t.Fatalf("Load found %d plugins (%v), want the websocket one", len(ts), ts)
	}
	// The plugin reports its capabilities; an agent keeps a pool of
	// links to it (it does not multiplex).
	if got, want := ts[0].Capabilities(), (sdk.Capabilities{HalfClose: true, Origins: true}); got != want || ts[0].Multiplexed() {
		t.Fatalf("Capabilities() = %+v, Multiplexed() = %v; want %+v, false", got, ts[0].Multiplexed(), want)
	}
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return ts[0], transporttest.Options{Origins: ts[0].Capabilities().Origins}
	})
}

// TestCrashRestart kills the plugin process while an endpoint serves a
// stream, and checks: the stream ends, calls fail with
// ErrTransportUnavailable or wait, the crash is logged with the plugin's
// stderr, and after the restart the same Endpoint value serves a new agent.
func TestCrashRestart(t *testing.T) {
	dir := buildExample(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := plugins.Start(ctx, filepath.Join(dir, "iofog-transport-websocket"), plugins.Config{Logger: log, MinBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: addr, Passcode: "secret", MappingID: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	pair := func() (c, a net.Conn, s sdk.Session) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "secret"})
			if err == nil {
				actx, acancel := context.WithTimeout(ctx, 10*time.Second)
				ach := make(chan net.Conn, 1)
				go func() {
					a, _ := s.Accept(actx)
					ach <- a
				}()
				c, err = ep.Open(actx)
				a = <-ach
				acancel()
				if err == nil && a != nil {
					return c, a, s
				}
				if c != nil {
					c.Close()
				}
				s.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("no stream through the plugin within 30s: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c, a, s := pair()
	if _, err := c.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "before" {
		t.Fatalf("before the crash: %q, %v", buf, err)
	}
	pid := tr.Pid()
	if pid == 0 {
		t.Fatal("Pid() = 0 for a running plugin")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The stream through the dead process ends.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a stream through the killed plugin still delivered bytes")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a stream through the killed plugin did not end within 20s")
	}
	a.Close()
	s.Close()
	// The mapping serves again, through the same Endpoint value.
	c2, a2, s2 := pair()
	defer s2.Close()
	if _, err := a2.Write([]byte("after!")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "after!" {
		t.Fatalf("after the restart: %q, %v", buf, err)
	}
	if newPid := tr.Pid(); newPid == 0 || newPid == pid {
		t.Fatalf("Pid() after restart = %d, old %d", newPid, pid)
	}
	if n := tr.Restarts(); n != 1 {
		t.Errorf("Restarts() after one crash = %d, want 1 (the metrics' plugin restarts)", n)
	}
	out := logs.String()
	for _, want := range []string{"transport plugin died", "transport plugin restarted", "stderr="} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

// TestHangRestart stops (SIGSTOP) the plugin process: the supervisor must
// count it as hung when pings go unanswered, kill it and start another,
// and the endpoint must serve again.
func TestHangRestart(t *testing.T) {
	dir := buildExample(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := plugins.Start(ctx, filepath.Join(dir, "iofog-transport-websocket"), plugins.Config{Logger: log, MinBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: addr, Passcode: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	pid := tr.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT) // in case it was not killed
	deadline := time.Now().Add(60 * time.Second)
	for tr.Pid() == pid || tr.Pid() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the hung plugin (pid %d) was not replaced within 60s; logs:\n%s", pid, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "hung") {
		t.Errorf("the restart was not logged as a hang:\n%s", logs)
	}
	// The endpoint serves on the new process.
	for {
		s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "secret"})
		if err == nil {
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			ach := make(chan net.Conn, 1)
			go func() {
				a, _ := s.Accept(actx)
				ach <- a
			}()
			c, err := ep.Open(actx)
			a := <-ach
			acancel()
			if err == nil && a != nil {
				c.Write([]byte("x"))
				b := make([]byte, 1)
				if _, err := io.ReadFull(a, b); err != nil {
					t.Fatalf("after the restart: %v", err)
				}
				c.Close()
				a.Close()
				s.Close()
				return
			}
			s.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint did not serve again after the hang: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
