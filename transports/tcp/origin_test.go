package tcp_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/transports/tcp"
)

// originOf returns the origin a stream from Session.Accept reports.
func originOf(c net.Conn) (sdk.Origin, bool) {
	if os, ok := c.(sdk.OriginStream); ok {
		return os.Origin()
	}
	return sdk.Origin{}, false
}

// bindOnce opens one stream on ep with ctx while the agent session s
// accepts it, checks that bytes cross both ways, and returns the agent's
// stream.
func bindOnce(t *testing.T, ctx context.Context, ep sdk.Endpoint, s sdk.Session) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := s.Accept(ctx)
		ch <- res{c, err}
	}()
	oc, err := ep.Open(ctx)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { oc.Close() })
	r := <-ch
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	if err := pingPong(oc, r.c); err != nil {
		t.Fatal(err)
	}
	if err := pingPong(r.c, oc); err != nil {
		t.Fatal(err)
	}
	return r.c
}

var testOrigin = sdk.Origin{
	Client: netip.MustParseAddrPort("127.0.0.2:40123"),
	Local:  netip.MustParseAddrPort("[::1]:7001"),
	Proxy:  sdk.ProxyV2,
}

// TestOriginReachesAgent: the origin given to Open arrives, exactly, on
// the agent's stream, which gives back the bare socket; a stream opened
// without one reports none.
func TestOriginReachesAgent(t *testing.T) {
	watchdog(t, time.Minute)
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc"})
	s, err := tr.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c := bindOnce(t, sdk.WithOrigin(ctx, testOrigin), ep, s)
	o, ok := originOf(c)
	if !ok || o != testOrigin {
		t.Fatalf("agent stream origin %+v, %v; want %+v", o, ok, testOrigin)
	}
	nc, ok := c.(interface{ NetConn() net.Conn })
	if !ok {
		t.Fatalf("%T does not give back its connection", c)
	}
	if _, ok := nc.NetConn().(*net.TCPConn); !ok {
		t.Fatalf("NetConn is %T, want the bare *net.TCPConn", nc.NetConn())
	}
	if _, ok := c.(sdk.CloseWriter); !ok {
		t.Fatalf("%T cannot half-close", c)
	}

	c2 := bindOnce(t, ctx, ep, s)
	if o, ok := originOf(c2); ok {
		t.Fatalf("a stream opened without an origin reports %+v", o)
	}
	if _, ok := c2.(*net.TCPConn); !ok {
		t.Fatalf("a stream without an origin is %T, want the bare *net.TCPConn", c2)
	}
}

// TestOriginOlderAgent: an agent of the release before protocol version
// 3 still works with a connector that has an origin to send; its stream
// carries none, and the connector says so once per endpoint.
func TestOriginOlderAgent(t *testing.T) {
	watchdog(t, time.Minute)
	var logs syncBuffer
	ep, addr := listenEP(t, newTransport(t), sdk.EndpointConfig{Passcode: "pc", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	old, err := tcp.NewWithVersion(tcp.Config{}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := old.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(sdk.WithOrigin(context.Background(), testOrigin), 20*time.Second)
	defer cancel()
	for range 2 {
		c := bindOnce(t, ctx, ep, s)
		if o, ok := originOf(c); ok {
			t.Fatalf("a version 2 agent's stream reports origin %+v", o)
		}
	}
	if n := strings.Count(logs.String(), "gets no PROXY header"); n != 1 {
		t.Fatalf("the missing origin was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestOriginOlderConnector: our agent against a connector of the release
// before protocol version 3 falls back to version 2 (keeping heartbeats
// and the control link) and works, with no origin.
func TestOriginOlderConnector(t *testing.T) {
	watchdog(t, time.Minute)
	old, err := tcp.NewWithVersion(tcp.Config{}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	ep, addr := listenEP(t, old, sdk.EndpointConfig{Passcode: "pc"})
	var logs syncBuffer
	s, err := newTransport(t).Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(sdk.WithOrigin(context.Background(), testOrigin), 20*time.Second)
	defer cancel()
	for range 2 {
		c := bindOnce(t, ctx, ep, s)
		if o, ok := originOf(c); ok {
			t.Fatalf("origin %+v from a version 2 connector", o)
		}
	}
	if n := strings.Count(logs.String(), "older protocol version"); n != 1 {
		t.Fatalf("fallback logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "version 1 only") {
		t.Fatalf("fell back to version 1 against a version 2 connector:\n%s", logs.String())
	}
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 2 {
		t.Fatalf("stats %+v: want the two bound streams", st)
	}
}

// TestOriginLegacyAgent: a legacy agent's link gets no origin (it could
// not read one), still relays, and the connector says so once.
func TestOriginLegacyAgent(t *testing.T) {
	watchdog(t, time.Minute)
	var logs syncBuffer
	ep, addr := listenEP(t, newTransport(t), sdk.EndpointConfig{Passcode: "legacy-pc", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(sdk.WithOrigin(context.Background(), testOrigin), 20*time.Second)
	defer cancel()
	for range 2 {
		lc, err := legacyLink(t, addr, "legacy-pc")
		if err != nil {
			t.Fatal(err)
		}
		oc, err := ep.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oc.Write([]byte("hi"))
		got := make([]byte, 2)
		lc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(lc, got); err != nil || string(got) != "hi" {
			t.Fatalf("legacy link got %q, %v: want the client's bytes and nothing before them", got, err)
		}
		oc.Close()
		lc.Close()
	}
	if n := strings.Count(logs.String(), "legacy ioFog agent"); n != 1 {
		t.Fatalf("legacy link without origin logged %d times, want once:\n%s", n, logs.String())
	}
}

// BenchmarkBind measures one bind of a pooled link (the agent's Accept
// dials a pool link, the connector's Open binds it, one byte crosses)
// without and with an origin in the bind frame, so the cost of carrying
// the client's address shows.
func BenchmarkBind(b *testing.B) {
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"none", context.Background()},
		{"origin", sdk.WithOrigin(context.Background(), testOrigin)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr := newTransport(b)
			ep, addr := listenEP(b, tr, sdk.EndpointConfig{Passcode: "pc"})
			s, err := tr.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			one := make([]byte, 1)
			for b.Loop() {
				ach := make(chan net.Conn, 1)
				go func() {
					a, err := s.Accept(context.Background())
					if err != nil {
						b.Error(err)
					}
					ach <- a
				}()
				c, err := ep.Open(tc.ctx)
				if err != nil {
					b.Fatal(err)
				}
				a := <-ach
				if a == nil {
					b.FailNow()
				}
				c.Write(one)
				if _, err := io.ReadFull(a, one); err != nil {
					b.Fatal(err)
				}
				c.Close()
				a.Close()
			}
		})
	}
}
