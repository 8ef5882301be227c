package agent_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
)

func watchdog(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { panic(t.Name() + ": watchdog: ran over " + d.String()) })
	t.Cleanup(func() { timer.Stop() })
}

func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

// freeAddr asks the kernel for a free loopback port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func listen(t *testing.T, tr sdk.Transport, addr string, mode sdk.Mode) sdk.Endpoint {
	t.Helper()
	var ep sdk.Endpoint
	var err error
	for range 50 { // the port may linger briefly after a previous endpoint
		ep, err = tr.Listen(context.Background(), sdk.EndpointConfig{Addr: addr, Passcode: "pc", Mode: mode})
		if err == nil {
			return ep
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

// openEcho opens a stream from ep and checks that msg comes back.
func openEcho(ctx context.Context, ep sdk.Endpoint, msg string) error {
	c, err := ep.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo differs: " + string(got))
	}
	return nil
}

// transports are the transports the agent's tests run over. sdk/ may not
// import transports/ (TestImportGraph, test imports included), so here it
// is the reference transport (sdk/internal/reftransport: streamkit over
// TCP, one connection per stream, origins carried); the same tests run
// over tcp in transports/tcp/agent_side_test.go (TestAgentSide*), which
// also has the pool growth test that needs tcp's lazy shared session.
func transports(t *testing.T) map[string]sdk.Transport {
	t.Helper()
	return map[string]sdk.Transport{"ref": reftransport.New()}
}

// TestRunPublicReconnects: the agent starts before the connector listens,
// connects once it does, and reconnects after the connector restarts;
// cancelling its context stops it and returns nil.
func TestRunPublicReconnects(t *testing.T) {
	for name, tr := range transports(t) {
		t.Run(name, func(t *testing.T) {
			watchdog(t, time.Minute)
			addr := freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			stopped := make(chan struct{})
			t.Cleanup(func() { cancel(); <-stopped })
			go func() {
				defer close(stopped)
				done <- agent.RunPublic(ctx, tr, agent.PublicConfig{
					Dial:  sdk.DialConfig{Addr: addr, Passcode: "pc"},
					Local: echo(t), Pool: 2,
					MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
					Logger: slog.New(slog.NewTextHandler(&logBuf{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
				})
			}()
			time.Sleep(300 * time.Millisecond) // a few failed dials
			for round := range 2 {
				ep := listen(t, tr, addr, sdk.ModePublic)
				octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
				if err := openEcho(octx, ep, "round"); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				ocancel()
				ep.Close()
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("RunPublic after cancel: %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("RunPublic did not return within 10s of cancel")
			}
		})
	}
}

// TestRunPrivateListen: each local connection accepted on Listen reaches
// the connector as a stream from Endpoint.Accept, both ways.
func TestRunPrivateListen(t *testing.T) {
	for name, tr := range transports(t) {
		t.Run(name, func(t *testing.T) {
			watchdog(t, time.Minute)
			addr := freeAddr(t)
			ep := listen(t, tr, addr, sdk.ModePrivate)
			defer ep.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan net.Addr, 1)
			done := make(chan error, 1)
			go func() {
				done <- agent.RunPrivate(ctx, tr, agent.PrivateConfig{
					Dial:   sdk.DialConfig{Addr: addr, Passcode: "pc"},
					Listen: "127.0.0.1:0", Ready: func(a net.Addr) { ready <- a },
					MinBackoff: 20 * time.Millisecond,
				})
			}()
			local := <-ready
			for i := range 3 {
				lc, err := net.Dial("tcp", local.String())
				if err != nil {
					t.Fatal(err)
				}
				lc.SetDeadline(time.Now().Add(10 * time.Second))
				lc.Write([]byte("from the local client"))
				actx, acancel := context.WithTimeout(ctx, 10*time.Second)
				s, err := ep.Accept(actx)
				acancel()
				if err != nil {
					t.Fatalf("stream %d: Endpoint.Accept: %v", i, err)
				}
				s.SetDeadline(time.Now().Add(10 * time.Second))
				got := make([]byte, len("from the local client"))
				if _, err := io.ReadFull(s, got); err != nil || string(got) != "from the local client" {
					t.Fatalf("stream %d: connector read %q, %v", i, got, err)
				}
				s.Write([]byte("back"))
				back := make([]byte, 4)
				if _, err := io.ReadFull(lc, back); err != nil || string(back) != "back" {
					t.Fatalf("stream %d: local client read %q, %v", i, back, err)
				}
				s.Close()
				lc.Close()
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("RunPrivate after cancel: %v", err)
			}
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	tr := transports(t)["ref"]
	ctx := context.Background()
	dial := sdk.DialConfig{Addr: "127.0.0.1:1", Passcode: "pc"}
	for name, err := range map[string]error{
		"public without Local":        agent.RunPublic(ctx, tr, agent.PublicConfig{Dial: dial}),
		"public negative pool":        agent.RunPublic(ctx, tr, agent.PublicConfig{Dial: dial, Local: "x:1", Pool: -1}),
		"public without passcode":     agent.RunPublic(ctx, tr, agent.PublicConfig{Dial: sdk.DialConfig{Addr: "x:1"}, Local: "x:1"}),
		"private with neither":        agent.RunPrivate(ctx, tr, agent.PrivateConfig{Dial: dial}),
		"private with Local & Listen": agent.RunPrivate(ctx, tr, agent.PrivateConfig{Dial: dial, Local: "x:1", Listen: "x:2"}),
		"nil transport":               agent.RunPublic(ctx, nil, agent.PublicConfig{Dial: dial, Local: "x:1"}),
	} {
		if !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want sdk.ErrInvalidConfig", name, err)
		}
	}
}

// logBuf sends the agent's log lines to t.Log, shown when the test fails.
type logBuf struct{ t *testing.T }

func (l *logBuf) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
