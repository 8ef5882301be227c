package tcp_test

// The tcp transport's agent side under the real agent (sdk/agent): these
// tests ran in sdk/agent over tcp until the import-direction test came to
// cover test imports (sdk/ may not import transports/). sdk/agent runs the
// transport-independent ones over its reference transport; here they run
// over tcp, whose lazy shared session (one connection per stream, links
// dialled as the pool asks) is what the pool growth test needs. Helpers
// are prefixed "as" to stay clear of the package's other test helpers.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/proxyproto"
	"github.com/iofog/iofog-connector/transports/tcp"
)

func asTransport(t *testing.T) *tcp.Transport {
	t.Helper()
	tr, err := tcp.New(tcp.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func asWatchdog(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { panic(t.Name() + ": watchdog: ran over " + d.String()) })
	t.Cleanup(func() { timer.Stop() })
}

// asServe runs h for each connection to a fresh loopback listener.
func asServe(t *testing.T, h func(net.Conn)) string {
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
			go func() { defer c.Close(); h(c) }()
		}
	}()
	return ln.Addr().String()
}

// asEcho is a local service that echoes, then half-closes.
func asEcho(t *testing.T) string {
	return asServe(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// asFreeAddr asks the kernel for a free loopback port.
func asFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func asListen(t *testing.T, tr sdk.Transport, addr string, mode sdk.Mode) sdk.Endpoint {
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

// asEchoOnce writes msg to c and reads it back.
func asEchoOnce(c net.Conn, msg string) error {
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

// asOpenEcho opens a stream from ep and checks that msg comes back.
func asOpenEcho(ctx context.Context, ep sdk.Endpoint, msg string) error {
	c, err := ep.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return asEchoOnce(c, msg)
}

// asLogger sends the agent's log lines to t.Log, shown when the test fails.
func asLogger(t *testing.T, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(asLogWriter{t}, &slog.HandlerOptions{Level: level}))
}

type asLogWriter struct{ t *testing.T }

func (l asLogWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestAgentSidePublicReconnects (was sdk/agent TestRunPublicReconnects/tcp):
// the agent starts before the connector listens, connects once it does,
// and reconnects after the connector restarts; cancelling its context
// stops it and returns nil.
func TestAgentSidePublicReconnects(t *testing.T) {
	asWatchdog(t, time.Minute)
	tr := asTransport(t)
	addr := asFreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		defer close(stopped)
		done <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial:  sdk.DialConfig{Addr: addr, Passcode: "pc"},
			Local: asEcho(t), Pool: 2,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			Logger: asLogger(t, slog.LevelDebug),
		})
	}()
	time.Sleep(300 * time.Millisecond) // a few failed dials
	for round := range 2 {
		ep := asListen(t, tr, addr, sdk.ModePublic)
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		if err := asOpenEcho(octx, ep, "round"); err != nil {
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
}

// TestAgentSidePrivateListen (was sdk/agent TestRunPrivateListen/tcp):
// each local connection accepted on Listen reaches the connector as a
// stream from Endpoint.Accept, both ways.
func TestAgentSidePrivateListen(t *testing.T) {
	asWatchdog(t, time.Minute)
	tr := asTransport(t)
	addr := asFreeAddr(t)
	ep := asListen(t, tr, addr, sdk.ModePrivate)
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
}

// asWaitIdle waits up to 10s for ep to hold want idle links and fails the
// test if it ever holds more than most.
func asWaitIdle(t *testing.T, ep sdk.Endpoint, want, most int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := ep.(sdk.StatsReporter).Stats().IdleLinks
		if n > most {
			t.Fatalf("%d idle links, want at most %d", n, most)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle links after 10s, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAgentSidePoolGrowsAndShrinks (was sdk/agent
// TestRunPublicPoolGrowsAndShrinks): on tcp (one connection per stream,
// one lazy session shared by the pool) the agent's pool grows while
// clients take links as soon as they come, up to MaxPool, and drops the
// links it added once they waited PoolIdle without a client, back to Pool.
func TestAgentSidePoolGrowsAndShrinks(t *testing.T) {
	asWatchdog(t, time.Minute)
	tr := asTransport(t)
	addr := asFreeAddr(t)
	ep := asListen(t, tr, addr, sdk.ModePublic)
	t.Cleanup(func() { ep.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		stopped <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial:  sdk.DialConfig{Addr: addr, Passcode: "pc"},
			Local: asEcho(t), Pool: 2, MaxPool: 6, PoolIdle: 500 * time.Millisecond,
			Logger: asLogger(t, slog.LevelInfo),
		})
	}()
	asWaitIdle(t, ep, 2, 2)
	// Clients that keep their streams and come one after another take
	// each link as it comes: the pool grows, to MaxPool and no further.
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := range 24 {
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := ep.Open(octx)
		ocancel()
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		held = append(held, c)
		if n := ep.(sdk.StatsReporter).Stats().IdleLinks; n > 6 {
			t.Fatalf("%d idle links after %d opens, want at most MaxPool 6", n, i+1)
		}
	}
	asWaitIdle(t, ep, 6, 6)
	for i, c := range held {
		if err := asEchoOnce(c, "held"); err != nil {
			t.Fatalf("held stream %d: %v", i, err)
		}
	}
	// Without clients the links added wait PoolIdle and go.
	asWaitIdle(t, ep, 2, 6)
	if err := asOpenEcho(ctx, ep, "after"); err != nil {
		t.Fatal(err)
	}
}

// asProxyService reads a PROXY header, if the connection starts with one
// (it peeks at the first byte: 'P' or '\r'), answers one line saying what
// it read ("v1 src dst", "v2 src dst" or "none"), then echoes.
func asProxyService(t *testing.T) string {
	return asServe(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		line := "none"
		if first[0] == 'P' || first[0] == '\r' {
			h, err := proxyproto.Read(br)
			if err != nil {
				fmt.Fprintf(c, "bad header: %v\n", err)
				return
			}
			line = fmt.Sprintf("v%d %s %s", h.Version, h.Src, h.Dst)
		}
		fmt.Fprintln(c, line)
		io.Copy(c, br)
	})
}

// TestAgentSideWritesProxyHeader (was sdk/agent
// TestRunPublicWritesProxyHeader over tcp): for a stream whose origin the
// connector sent over tcp, the agent writes a PROXY header of the origin's
// version with the client's and the local address, exactly, before the
// client's bytes; a stream without an origin gets none.
func TestAgentSideWritesProxyHeader(t *testing.T) {
	asWatchdog(t, time.Minute)
	tr := asTransport(t)
	addr := asFreeAddr(t)
	ep := asListen(t, tr, addr, sdk.ModePublic)
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial: sdk.DialConfig{Addr: addr, Passcode: "pc"}, Local: asProxyService(t), Pool: 2,
			Logger: asLogger(t, slog.LevelDebug),
		})
	}()
	defer func() { cancel(); <-done }()
	client := netip.MustParseAddrPort("127.0.0.2:40123")
	for _, tc := range []struct {
		o    *sdk.Origin
		want string
	}{
		{&sdk.Origin{Client: client, Local: netip.MustParseAddrPort("127.0.0.1:7001"), Proxy: sdk.ProxyV1}, "v1 127.0.0.2:40123 127.0.0.1:7001"},
		{&sdk.Origin{Client: client, Local: netip.MustParseAddrPort("127.0.0.1:7001"), Proxy: sdk.ProxyV2}, "v2 127.0.0.2:40123 127.0.0.1:7001"},
		{&sdk.Origin{Client: netip.MustParseAddrPort("[::1]:5"), Local: netip.MustParseAddrPort("[::1]:6"), Proxy: sdk.ProxyV2}, "v2 [::1]:5 [::1]:6"},
		{nil, "none"},
	} {
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		if tc.o != nil {
			octx = sdk.WithOrigin(octx, *tc.o)
		}
		c, err := ep.Open(octx)
		ocancel()
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("after the header\n"))
		br := bufio.NewReader(c)
		got, _ := br.ReadString('\n')
		echoed, _ := br.ReadString('\n')
		c.Close()
		if strings.TrimSpace(got) != tc.want || echoed != "after the header\n" {
			t.Fatalf("service saw %q then echoed %q; want %q and the client's bytes", got, echoed, tc.want)
		}
	}
}
