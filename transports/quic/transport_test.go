package quic_test

import (
	"context"
	"errors"
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

// TestManyStreamsWithoutGRO is TestMultiplexer/ManyStreams with UDP GRO
// off (Config.DisableGRO): the plain read path still carries everything.
func TestManyStreamsWithoutGRO(t *testing.T) {
	transporttest.CheckManyStreams(t, newTransport(t, quic.Config{DisableGRO: true}), 200)
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
	addr := transporttest.Addr(t, ep)

	pool, err := quic.CertPool(path)
	if err != nil {
		t.Fatal(err)
	}
	agent := newTransport(t, quic.Config{})
	s, err := agent.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw", TLS: pool})
	if err != nil {
		t.Fatalf("agent trusting the dev identity as its CA: %v", err)
	}
	transporttest.CheckStreamsOneLink(t, ctx, ep, s, 4)
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

// TestMultiplexer runs the shared checks of multiplexing transports: many
// streams on one connection, the session's end and go-away as the agent
// sees them.
func TestMultiplexer(t *testing.T) {
	transporttest.TestMultiplexer(t, "udp", func(t *testing.T) sdk.Transport { return newTransport(t, quic.Config{}) })
}

// TestWaitRead checks the streams' WaitRead (transporttest.CheckWaitRead).
func TestWaitRead(t *testing.T) {
	ep, s := transporttest.Setup(t, newTransport(t, quic.Config{}), "udp", sdk.EndpointConfig{}, sdk.DialConfig{})
	transporttest.CheckWaitRead(t, ep, s)
}
