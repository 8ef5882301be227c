package yamux_test

import (
	"context"
	"errors"
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
		return newTransport(t), transporttest.Options{}
	})
}

func TestConformanceTLS(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return newTransport(t), transporttest.Options{
			TLS: true,
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
