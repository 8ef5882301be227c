package quic_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/quic"
)

func newTransport(t testing.TB, cfg quic.Config) *quic.Transport {
	t.Helper()
	tr, err := quic.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestConformance runs the suite in dev mode: no TLS config is passed, so
// the endpoint uses the persisted dev identity and the agent trusts any
// certificate.
func TestConformance(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return newTransport(t, quic.Config{IdentityDir: t.TempDir()}), transporttest.Options{Network: "udp", Origins: true}
	})
}

// TestConformanceTLS runs the suite with the suite's CA-verified TLS
// configs on both halves.
func TestConformanceTLS(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return newTransport(t, quic.Config{}), transporttest.Options{Network: "udp", TLS: true, Origins: true}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  quic.Config
		ok   bool
	}{
		{"zero", quic.Config{}, true},
		{"defaults", quic.DefaultConfig(), true},
		{"negative streams", quic.Config{MaxStreams: -1}, false},
		{"bad pin", quic.Config{PinSHA256: "abc"}, false},
		{"good pin", quic.Config{PinSHA256: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := quic.New(tc.cfg, nil)
			if got := err == nil; got != tc.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Fatalf("err = %v, want sdk.ErrInvalidConfig", err)
			}
		})
	}
}

func TestManyStreamsOneConnection(t *testing.T) {
	manyStreams(t, quic.Config{})
}

// TestManyStreamsWithoutGRO is TestManyStreamsOneConnection with UDP GRO
// off (Config.DisableGRO): the plain read path still carries everything.
func TestManyStreamsWithoutGRO(t *testing.T) {
	manyStreams(t, quic.Config{DisableGRO: true})
}

func manyStreams(t *testing.T, cfg quic.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := newTransport(t, cfg)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: listenAddr(t, ep), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkStreams(t, ctx, ep, s, 200)
}

// TestDevIdentity checks that the dev identity is persisted and reused,
// that an agent given it as its CA (the agent's --ca) verifies the
// connector, that a matching pin is accepted and a wrong one refused.
func TestDevIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	tr := newTransport(t, quic.Config{IdentityDir: dir})
	pem1, path, sum, err := tr.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, quic.CertFile) {
		t.Errorf("cert path = %q, want it in %s", path, dir)
	}
	if fi, err := os.Stat(filepath.Join(dir, quic.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want it saved with mode 0600", err, fi)
	}
	pem2, _, sum2, err := newTransport(t, quic.Config{IdentityDir: dir}).Identity()
	if err != nil {
		t.Fatal(err)
	}
	if string(pem1) != string(pem2) || sum != sum2 {
		t.Fatal("a second transport on the same dir made a new identity instead of reusing the saved one")
	}
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	addr := listenAddr(t, ep)

	pool, err := quic.CertPool(path)
	if err != nil {
		t.Fatal(err)
	}
	agent := newTransport(t, quic.Config{})
	s, err := agent.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw", TLS: pool})
	if err != nil {
		t.Fatalf("agent trusting the dev identity as its CA: %v", err)
	}
	checkStreams(t, ctx, ep, s, 4)
	s.Close()

	pinned := newTransport(t, quic.Config{PinSHA256: sum})
	s, err = pinned.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatalf("agent pinning the right fingerprint: %v", err)
	}
	s.Close()

	wrong := newTransport(t, quic.Config{PinSHA256: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"})
	if s, err := wrong.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"}); err == nil {
		s.Close()
		t.Fatal("agent pinning a wrong fingerprint connected")
	}
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

func newTestTransport(t *testing.T) sdk.Transport { return newTransport(t, quic.Config{}) }

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
