package transporttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/proxyproto"
)

// The checks below run the real agent (package sdk/agent) against a
// transport's own endpoints, so that a transport, built in or third
// party, can show that the agent works over it. They read these fields of
// the Options they are given: Network (what the agent port speaks), TLS
// (a generated certificate for the endpoint and the agent), Timeout (the
// watchdog) and Logger (the endpoints' logs); the agent logs to t.Log at
// debug level, shown when the test fails.

// AgentPublic checks [agent.RunPublic] over tr: the agent starts before
// the connector listens, connects once it does (a stream opened with
// Endpoint.Open reaches its local service and echoes), and reconnects
// after the endpoint is closed and a new one listens on the same address;
// cancelling its context stops it within 10s and it returns nil.
func AgentPublic(t *testing.T, tr sdk.Transport, opts Options) {
	t.Helper()
	a := newAgentEnv(t, tr, opts)
	addr := a.freeAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		defer close(stopped)
		done <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial:  a.dialConfig(addr),
			Local: EchoService(t), Pool: 2,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			Logger: agentLogger(t),
		})
	}()
	time.Sleep(300 * time.Millisecond) // a few failed dials
	for round := range 2 {
		ep := a.listen(addr, sdk.ModePublic)
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		if err := agentOpenEcho(octx, ep, "round"); err != nil {
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

// AgentPrivate checks the listening side of [agent.RunPrivate] over tr:
// each of three local connections accepted on PrivateConfig.Listen
// reaches the connector as a stream from Endpoint.Accept of a
// [sdk.ModePrivate] endpoint, carrying bytes both ways; cancelling the
// agent's context makes it return nil.
func AgentPrivate(t *testing.T, tr sdk.Transport, opts Options) {
	t.Helper()
	a := newAgentEnv(t, tr, opts)
	addr := a.freeAddr()
	ep := a.listen(addr, sdk.ModePrivate)
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		defer close(stopped)
		done <- agent.RunPrivate(ctx, tr, agent.PrivateConfig{
			Dial:   a.dialConfig(addr),
			Listen: "127.0.0.1:0", Ready: func(a net.Addr) { ready <- a },
			MinBackoff: 20 * time.Millisecond,
			Logger:     agentLogger(t),
		})
	}()
	var local net.Addr
	select {
	case local = <-ready:
	case err := <-done:
		t.Fatalf("RunPrivate returned before listening: %v", err)
	}
	const msg = "from the local client"
	for i := range 3 {
		lc, err := net.Dial("tcp", local.String())
		if err != nil {
			t.Fatal(err)
		}
		lc.SetDeadline(time.Now().Add(10 * time.Second))
		lc.Write([]byte(msg))
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := ep.Accept(actx)
		acancel()
		if err != nil {
			lc.Close()
			t.Fatalf("stream %d: Endpoint.Accept: %v", i, err)
		}
		s.SetDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(s, got); err != nil || string(got) != msg {
			lc.Close()
			s.Close()
			t.Fatalf("stream %d: connector read %q, %v", i, got, err)
		}
		s.Write([]byte("back"))
		back := make([]byte, 4)
		_, err = io.ReadFull(lc, back)
		s.Close()
		lc.Close()
		if err != nil || string(back) != "back" {
			t.Fatalf("stream %d: local client read %q, %v", i, back, err)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunPrivate after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunPrivate did not return within 10s of cancel")
	}
}

// AgentProxyHeader checks the PROXY protocol header [agent.RunPublic]
// writes over tr, which must carry origins ([sdk.OriginStream]): for a
// stream opened with an origin ([sdk.WithOrigin]; IPv4 with version 1 and
// 2, IPv6 with version 2) the local service reads a header of the
// origin's version with the client's and the local address, exactly,
// before the client's bytes, which then echo intact; a stream opened
// without an origin gets no header.
func AgentProxyHeader(t *testing.T, tr sdk.Transport, opts Options) {
	t.Helper()
	a := newAgentEnv(t, tr, opts)
	addr := a.freeAddr()
	ep := a.listen(addr, sdk.ModePublic)
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial: a.dialConfig(addr), Local: agentProxyService(t), Pool: 2,
			Logger: agentLogger(t),
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
			t.Fatalf("Endpoint.Open for %q: %v", tc.want, err)
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

// agentEnv is what one agent check needs of its Options.
type agentEnv struct {
	t    *testing.T
	tr   sdk.Transport
	opts Options
	tls  *tlsPair
}

// newAgentEnv applies the defaults to opts and starts the check's
// watchdog: past opts.Timeout it panics with every goroutine's stack, as
// a hung agent or endpoint could not be unblocked from here.
func newAgentEnv(t *testing.T, tr sdk.Transport, opts Options) *agentEnv {
	t.Helper()
	if tr == nil {
		t.Fatal("transporttest: nil sdk.Transport")
	}
	opts.defaults()
	wd := time.AfterFunc(opts.Timeout, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("transporttest: %s: watchdog: ran over %v. Goroutines:\n%s", t.Name(), opts.Timeout, buf))
	})
	t.Cleanup(func() { wd.Stop() })
	a := &agentEnv{t: t, tr: tr, opts: opts}
	if opts.TLS {
		a.tls = newTLSPair(t)
	}
	return a
}

// freeAddr returns a free loopback address for the agent port, which the
// agent may dial before anything listens on it.
func (a *agentEnv) freeAddr() string {
	a.t.Helper()
	addr, err := freeAddr(a.opts.Network)
	if err != nil {
		a.t.Fatalf("finding a free %s port: %v", a.opts.Network, err)
	}
	return addr
}

// listen starts an endpoint on addr with passcode "pc", retrying for up
// to 2.5s while the address is still taken (by an endpoint just closed,
// or by the probe's socket lingering).
func (a *agentEnv) listen(addr string, mode sdk.Mode) sdk.Endpoint {
	a.t.Helper()
	cfg := sdk.EndpointConfig{MappingID: "agent", Side: 1, Addr: addr, Passcode: "pc", Mode: mode, Logger: a.opts.Logger}
	if a.tls != nil {
		cfg.TLS = a.tls.server.Clone()
	}
	var err error
	for range 50 {
		var ep sdk.Endpoint
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ep, err = a.tr.Listen(ctx, cfg)
		cancel()
		if err == nil {
			if ep == nil {
				a.t.Fatalf("Listen(%s) returned a nil Endpoint and no error", addr)
			}
			return ep
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.t.Fatalf("Listen(%s): %v", addr, err)
	return nil
}

// dialConfig is what the agent dials the endpoint on addr with.
func (a *agentEnv) dialConfig(addr string) sdk.DialConfig {
	cfg := sdk.DialConfig{Addr: addr, Passcode: "pc"}
	if a.tls != nil {
		cfg.TLS = a.tls.client.Clone()
	}
	return cfg
}

// Serve runs h, on its own goroutine, for each connection to a fresh
// loopback listener (a local service for an agent, or a stand-in for any
// TCP service a test needs), closes the connection when h returns, and
// returns the listener's address. It stops when tb's test ends.
func Serve(tb testing.TB, h func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
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

// EchoService starts a local TCP service on a loopback port, for an
// agent's PublicConfig.Local or PrivateConfig.Local, and returns its
// address: it echoes each connection's bytes (for at most 20s), then
// half-closes. It stops when tb's test ends.
func EchoService(tb testing.TB) string {
	tb.Helper()
	return Serve(tb, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// agentProxyService is a local service that reads a PROXY header, if the
// connection starts with one (it peeks at the first byte: 'P' or '\r'),
// answers one line saying what it read ("v1 src dst", "v2 src dst" or
// "none"), then echoes.
func agentProxyService(t *testing.T) string {
	return Serve(t, func(c net.Conn) {
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

// agentOpenEcho opens a stream from ep and checks that msg comes back.
func agentOpenEcho(ctx context.Context, ep sdk.Endpoint, msg string) error {
	c, err := ep.Open(ctx)
	if err != nil {
		return fmt.Errorf("Endpoint.Open: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("writing to the stream: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo differs: got %q, want %q", got, msg)
	}
	return nil
}

// agentLogger sends the agent's log lines to t.Log.
func agentLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tLogWriter struct{ t *testing.T }

func (l tLogWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
