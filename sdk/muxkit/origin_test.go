package muxkit_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

var testOrigin = sdk.Origin{
	Client: netip.MustParseAddrPort("127.0.0.2:40123"),
	Local:  netip.MustParseAddrPort("[::1]:7001"),
	Proxy:  sdk.ProxyV1,
}

// linkVersion adds a fake link whose agent said hello version v.
func linkVersion(t *testing.T, ep *muxkit.Endpoint, v byte) *muxkit.Session {
	t.Helper()
	if err := ep.Reserve(); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	c, a := fakePair()
	ep.AddHello(c, muxkit.Hello{Version: v})
	return muxkit.NewSessionVersion("fake", a, v)
}

// openAccept opens a stream on ep with ctx and accepts it on s, and
// checks that "hi" crosses it intact (no header bytes leak into data).
func openAccept(t *testing.T, ctx context.Context, ep *muxkit.Endpoint, s *muxkit.Session) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := s.Accept(testCtx(t))
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
	go oc.Write([]byte("hi"))
	got := make([]byte, 2)
	if _, err := io.ReadFull(r.c, got); err != nil || string(got) != "hi" {
		t.Fatalf("agent read %q, %v; want hi", got, err)
	}
	return r.c
}

// TestOriginOverVersion3: the origin given to Open arrives on the agent's
// stream; a stream opened without one reports none; both carry data
// intact.
func TestOriginOverVersion3(t *testing.T) {
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{})
	defer ep.Close()
	s := linkVersion(t, ep, muxkit.Version3)
	c := openAccept(t, sdk.WithOrigin(testCtx(t), testOrigin), ep, s)
	os, ok := c.(sdk.OriginStream)
	if !ok {
		t.Fatalf("%T does not report an origin", c)
	}
	if o, ok := os.Origin(); !ok || o != testOrigin {
		t.Fatalf("origin %+v, %v; want %+v", o, ok, testOrigin)
	}
	if nc, ok := c.(interface{ NetConn() net.Conn }); !ok || nc.NetConn() == nil {
		t.Fatalf("%T does not give back its stream", c)
	}
	c2 := openAccept(t, testCtx(t), ep, s)
	if os, ok := c2.(sdk.OriginStream); ok {
		if o, ok := os.Origin(); ok {
			t.Fatalf("a stream opened without an origin reports %+v", o)
		}
	}
}

// TestOriginOlderAgent: a link of an agent of an older release gets no
// header (it would read it as data), and the endpoint says so once.
func TestOriginOlderAgent(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{Logger: log})
	defer ep.Close()
	for _, v := range []byte{muxkit.Version1, muxkit.Version2} {
		// One link at a time: Open spreads streams over the links.
		s := linkVersion(t, ep, v)
		defer s.Close()
		for range 2 {
			c := openAccept(t, sdk.WithOrigin(testCtx(t), testOrigin), ep, s)
			if os, ok := c.(sdk.OriginStream); ok {
				t.Fatalf("version %d stream %T reports an origin", v, os)
			}
		}
		s.Conn().Close()
		waitLinks(t, ep, 0)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "gets no PROXY header"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestOriginMalformedDropsStreamOnly: a stream whose origin header is
// garbage is closed, and the session goes on to the next stream.
func TestOriginMalformedDropsStreamOnly(t *testing.T) {
	c, a := fakePair()
	s := muxkit.NewSessionVersion("fake", a, muxkit.Version3)
	defer s.Close()
	bad, err := c.OpenStream(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	go bad.Write([]byte{5, 9, 9, 9, 9, 9})
	good, err := c.OpenStream(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	go good.Write(append(muxkit.AppendOriginHeader(nil, testOrigin, true), "ok"...))
	got, err := s.Accept(testCtx(t))
	if err != nil {
		t.Fatalf("Accept after a malformed header: %v", err)
	}
	defer got.Close()
	if o, ok := got.(sdk.OriginStream).Origin(); !ok || o != testOrigin {
		t.Fatalf("origin %+v", o)
	}
	b := make([]byte, 2)
	if _, err := io.ReadFull(got, b); err != nil || string(b) != "ok" {
		t.Fatalf("read %q %v", b, err)
	}
	// The bad stream was closed: its writer's peer is gone.
	if _, err := bad.Write([]byte("x")); err == nil {
		t.Fatal("the malformed stream is still open")
	}
}

// FuzzReadOriginHeader feeds arbitrary bytes to the agent's reader of a
// stream's origin header: it must not panic, must read at most
// 1+sdk.MaxOriginLen bytes, must return only valid origins, and must read
// back exactly what AppendOriginHeader writes.
func FuzzReadOriginHeader(f *testing.F) {
	f.Add(muxkit.AppendOriginHeader(nil, testOrigin, true))
	f.Add(muxkit.AppendOriginHeader(nil, testOrigin, false))
	f.Add([]byte{200})
	f.Add([]byte{3, 1, 1, 6})
	f.Fuzz(func(t *testing.T, in []byte) {
		cr := &countReader{r: bytes.NewReader(in)}
		o, ok, err := muxkit.ReadOriginHeader(cr, nil)
		if cr.n > 1+sdk.MaxOriginLen {
			t.Fatalf("read %d bytes", cr.n)
		}
		if err != nil || !ok {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("accepted invalid %+v: %v", o, err)
		}
		if !bytes.Equal(muxkit.AppendOriginHeader(nil, o, true), in[:cr.n]) {
			t.Fatalf("re-encoded differently: %x vs %x", muxkit.AppendOriginHeader(nil, o, true), in[:cr.n])
		}
	})
}

// waitLinks waits until ep holds n links.
func waitLinks(t *testing.T, ep *muxkit.Endpoint, n int) {
	t.Helper()
	ctx := testCtx(t)
	for ep.Stats().Links != n {
		if ctx.Err() != nil {
			t.Fatalf("endpoint holds %d links, want %d", ep.Stats().Links, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
