package transporttest

import (
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

func testHeartbeatAbsence(t *testing.T, e *env) {
	th := e.opts.HeartbeatThreshold
	cfg := e.endpointConfig()
	cfg.HeartbeatThreshold = th
	ep, addr := e.listen(cfg)
	px, err := newProxy(e.opts.Network, addr)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	e.track(px)
	dc := e.dialConfig(px.Addr(), cfg.Passcode)
	dc.HeartbeatInterval = th / 5
	dc.HeartbeatThreshold = th
	s := e.dial(dc)
	c, a := e.pair(ep, s)
	if err := exchange(c, a, "before idling"); err != nil {
		t.Fatal(err)
	}
	// An idle link that beats is kept: idle for twice the threshold.
	time.Sleep(2 * th)
	if err := exchange(c, a, "after idling twice the heartbeat threshold"); err != nil {
		t.Fatalf("an idle but live link was dropped: %v", err)
	}
	// Silence both ways: each end drops the link within its threshold.
	slack := th + 5*time.Second
	px.Freeze()
	start := time.Now()
	cdone := make(chan error, 1)
	go func() { cdone <- readEnds(c, th+slack) }()
	if err := readEnds(a, th+slack); err != nil {
		t.Errorf("the agent's stream outlived a connector silent for its %v threshold: %v", th, err)
	} else {
		t.Logf("agent side dropped the silent link after %v (threshold %v)", time.Since(start).Round(time.Millisecond), th)
	}
	if err := <-cdone; err != nil {
		t.Errorf("the connector's stream outlived an agent silent for its %v threshold: %v", th, err)
	} else {
		t.Logf("connector side dropped the silent link by %v (threshold %v)", time.Since(start).Round(time.Millisecond), th)
	}
	if sr, ok := ep.(sdk.StatsReporter); ok {
		deadline := time.Now().Add(slack)
		for sr.Stats().Links != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := sr.Stats().Links; got != 0 {
			t.Errorf("Stats().Links = %d after the only agent fell silent, want 0", got)
		}
	}
}
