package yamux_test

import (
	"errors"
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

// TestMultiplexer runs the shared checks of multiplexing transports: many
// streams on one session, the session's end and go-away as the agent sees
// them.
func TestMultiplexer(t *testing.T) {
	transporttest.TestMultiplexer(t, "tcp", func(t *testing.T) sdk.Transport { return newTransport(t) })
}

// TestWaitRead checks the streams' WaitRead (transporttest.CheckWaitRead).
func TestWaitRead(t *testing.T) {
	ep, s := transporttest.Setup(t, newTransport(t), "tcp", sdk.EndpointConfig{}, sdk.DialConfig{})
	transporttest.CheckWaitRead(t, ep, s)
}
