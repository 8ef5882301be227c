package plugin_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// muxTransport is the reference transport claiming to multiplex (its
// sessions do carry any number of streams), counting its sessions.
type muxTransport struct {
	sdk.Transport
	dials atomic.Int64
}

func (*muxTransport) Multiplexed() bool { return true }

func (t *muxTransport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	t.dials.Add(1)
	return t.Transport.Dial(ctx, cfg)
}

// TestRemoteCapabilities: what the plugin's transport can do crosses in
// Info, and the host's Remote reports it (sdk.Multiplexer,
// sdk.CapabilityReporter).
func TestRemoteCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name string
		impl sdk.Transport
		want sdk.Capabilities
	}{
		{"ref", reftransport.New(), sdk.Capabilities{HalfClose: true, Origins: true}},
		// The embedded sdk.Transport hides the kit's Capabilities method;
		// Multiplexed alone is reported.
		{"multiplexing", &muxTransport{Transport: reftransport.New()}, sdk.Capabilities{Multiplexed: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := remote(t, tc.impl)
			if info := r.Info(); !info.CapabilitiesReported || info.Capabilities != tc.want {
				t.Fatalf("Info() = %+v, want capabilities %+v reported", info, tc.want)
			}
			if got := sdk.CapabilitiesOf(r); got != tc.want {
				t.Fatalf("sdk.CapabilitiesOf(remote) = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRemoteFailedByReason: an endpoint's failures, split by reason,
// cross the boundary.
func TestRemoteFailedByReason(t *testing.T) {
	r := remote(t, reftransport.New())
	ep, addr := transporttest.Listen(t, r, "tcp", sdk.EndpointConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "wrong"}); !errors.Is(err, sdk.ErrBadPasscode) {
		t.Fatalf("Dial with a wrong passcode: %v, want sdk.ErrBadPasscode", err)
	}
	st := ep.(sdk.StatsReporter).Stats()
	if st.Failed != 1 || st.FailedByReason[sdk.FailureBadPasscode] != 1 {
		t.Fatalf("Stats() = %+v, want one bad_passcode failure", st)
	}
}

// TestAgentKeepsOneSessionToMultiplexingPlugin: an agent with no pool
// size of its own keeps one session to a plugin whose transport
// multiplexes, and the default pool of links to one that does not.
func TestAgentKeepsOneSessionToMultiplexingPlugin(t *testing.T) {
	for _, tc := range []struct {
		name      string
		multiplex bool
		want      int64
	}{
		{"multiplexing", true, 1},
		{"one stream per link", false, agent.DefaultPool},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var impl sdk.Transport
			counter := &muxTransport{Transport: reftransport.New()}
			impl = counter
			if !tc.multiplex {
				impl = struct{ dialCounter }{dialCounter{counter}}
			}
			r := remote(t, impl)
			_, addr := transporttest.Listen(t, reftransport.New(), "tcp", sdk.EndpointConfig{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- agent.RunPublic(ctx, r, agent.PublicConfig{Dial: sdk.DialConfig{Addr: addr, Passcode: "pw"}, Local: ln.Addr().String()})
			}()
			deadline := time.Now().Add(10 * time.Second)
			for counter.dials.Load() < tc.want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond) // room for extra dials to show
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("RunPublic: %v", err)
			}
			if got := counter.dials.Load(); got != tc.want {
				t.Fatalf("the agent dialled %d sessions through the plugin, want %d", got, tc.want)
			}
		})
	}
}

// dialCounter hides muxTransport's Multiplexed method and keeps its
// counting Dial.
type dialCounter struct{ m *muxTransport }

func (d dialCounter) Name() string { return d.m.Name() }
func (d dialCounter) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	return d.m.Listen(ctx, cfg)
}
func (d dialCounter) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	return d.m.Dial(ctx, cfg)
}
