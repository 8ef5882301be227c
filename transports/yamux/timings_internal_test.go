package yamux

import (
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// TestAgentTimings: the agent pings well inside the threshold the
// connector told it, whatever its own (default) settings say, and keeps
// its own threshold when it has one.
func TestAgentTimings(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		cfg                     sdk.DialConfig
		told                    time.Duration
		wantThreshold, wantPing time.Duration
		wantTimeout             time.Duration
	}{
		{"old connector, defaults", sdk.DialConfig{}, 0, 0, 15 * time.Second, 30 * time.Second},
		{"told 5s", sdk.DialConfig{}, 5 * time.Second, 5 * time.Second, 1250 * time.Millisecond, 2500 * time.Millisecond},
		{"told 1s", sdk.DialConfig{}, time.Second, time.Second, 250 * time.Millisecond, 500 * time.Millisecond},
		{"told 200s", sdk.DialConfig{}, 200 * time.Second, 200 * time.Second, 50 * time.Second, 100 * time.Second},
		{"own threshold kept, pings for the connector", sdk.DialConfig{HeartbeatThreshold: 60 * time.Second}, 5 * time.Second, 60 * time.Second, 1250 * time.Millisecond, 30 * time.Second},
		{"own shorter interval kept", sdk.DialConfig{HeartbeatInterval: 100 * time.Millisecond}, 5 * time.Second, 5 * time.Second, 100 * time.Millisecond, 2500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			th, iv := agentTimings(tt.cfg, muxkit.Terms{HeartbeatThreshold: tt.told})
			if th != tt.wantThreshold {
				t.Errorf("threshold %v, want %v", th, tt.wantThreshold)
			}
			every, timeout := keepalive(th, iv)
			if every != tt.wantPing || timeout != tt.wantTimeout {
				t.Errorf("keepalive every %v, timeout %v; want %v, %v", every, timeout, tt.wantPing, tt.wantTimeout)
			}
		})
	}
}
