package yamux_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/yamux"
)

func newTransport(t testing.TB) *yamux.Transport {
	t.Helper()
	tr, err := yamux.New(yamux.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestConformance(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return newTransport(t), transporttest.Options{Origins: true}
	})
}

func TestConformanceTLS(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return newTransport(t), transporttest.Options{
			TLS:     true,
			Origins: true,
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  yamux.Config
		ok   bool
	}{
		{"zero", yamux.Config{}, true},
		{"defaults", yamux.DefaultConfig(), true},
		{"tiny window", yamux.Config{MaxStreamWindowSize: 1024}, false},
		{"negative backlog", yamux.Config{AcceptBacklog: -1}, false},
		{"negative handshake timeout", yamux.Config{HandshakeTimeout: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := yamux.New(tc.cfg, nil)
			if got := err == nil; got != tc.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Fatalf("err = %v, want sdk.ErrInvalidConfig", err)
			}
		})
	}
}

// TestManyStreamsOneSession checks that one agent session carries many
// concurrent streams and that Stats counts one link and every live stream.
func TestManyStreamsOneSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := newTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	addr := listenAddr(t, ep)
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 200
	checkStreams(t, ctx, ep, s, n)
}

// TestSessionEndIsErrClosed checks that once the connector closes an idle
// agent link, the agent's pending Accept fails with an error satisfying
// errors.Is(err, net.ErrClosed), which tells an agent to redial at once.
func TestSessionEndIsErrClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := newTestTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: listenAddr(t, ep), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := s.Accept(ctx)
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	ep.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Session.Accept after the connector closed the link: err = %v, want one wrapping net.ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Session.Accept did not return after the connector closed the link")
	}
}

func newTestTransport(t *testing.T) sdk.Transport { return newTransport(t) }

// TestGoAwayReachesAgent checks that closing an endpoint whose link still
// carries a stream makes the agent's pending Accept fail at once (with an
// error wrapping net.ErrClosed, so it redials) while the stream goes on.
func TestGoAwayReachesAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := newTestTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: listenAddr(t, ep), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(chan net.Conn, 1)
	go func() {
		a, err := s.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- a
	}()
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := <-got
	if a == nil {
		t.FailNow()
	}
	defer a.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := s.Accept(ctx)
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	ep.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("pending Session.Accept after the endpoint closed: err = %v, want one wrapping net.ErrClosed", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("pending Session.Accept took %v to fail", d)
		}
	case <-ctx.Done():
		t.Fatal("pending Session.Accept did not return after the endpoint closed with a live stream")
	}
	// The live stream still carries bytes both ways.
	for _, d := range [][2]net.Conn{{c, a}, {a, c}} {
		d[1].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := d[0].Write([]byte("still here")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(d[1], buf); err != nil || string(buf) != "still here" {
			t.Fatalf("live stream after go-away: %q, %v", buf, err)
		}
	}
}
