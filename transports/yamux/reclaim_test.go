package yamux_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// TestFullEndpointReclaimsDeadSession: with MaxLinks 1, an idle session
// whose agent went silent (the path froze) is probed and closed when a new
// agent knocks, so the new agent is admitted at once instead of after the
// heartbeat threshold; an idle session that still answers keeps its place.
func TestFullEndpointReclaimsDeadSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := newTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw", MaxLinks: 1, HeartbeatThreshold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	addr := transporttest.Addr(t, ep)
	px := newProxy(t, addr)
	s1, err := tr.Dial(ctx, sdk.DialConfig{Addr: px.addr(), Passcode: "pw", HeartbeatThreshold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()

	// A live idle agent keeps its place.
	if s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"}); !errors.Is(err, sdk.ErrLinkLimit) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second agent while the first answers: err = %v, want sdk.ErrLinkLimit", err)
	}

	// The first agent's path freezes; a new agent is admitted in about
	// the probe time, far below the one-minute threshold.
	px.freeze()
	start := time.Now()
	s2, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatalf("new agent after the first went silent: %v", err)
	}
	defer s2.Close()
	t.Logf("admitted after %v", time.Since(start).Round(time.Millisecond))
	transporttest.CheckStreamsOneLink(t, ctx, ep, s2, 4)
}
