package transporttest

import (
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// testAgentFrozen checks agent liveness as the connector's threshold
// alone decides it: the agent's DialConfig sets no heartbeat timings, so a
// transport must tell the agent the endpoint's threshold for it to beat in
// time. A stream idle for three thresholds on a live agent works and the
// link count never wavers; then the path stalls as a SIGSTOPped agent's
// does (nothing read or written, the kernel still holding the connection),
// and the connector's streams, one idle and one the connector is writing
// into, end within the threshold plus slack, its links return to 0, and
// the agent's stream ends too (its own default threshold is 60 s, so only
// the threshold it was told ends it in time).
func testAgentFrozen(t *testing.T, e *env) {
	if reason, ok := e.opts.Skip["HeartbeatAbsence"]; ok {
		t.Skipf("needs what HeartbeatAbsence checks, which is skipped: %s", reason)
	}
	th := e.opts.HeartbeatThreshold
	cfg := e.endpointConfig()
	cfg.HeartbeatThreshold = th
	ep, addr := e.listen(cfg)
	px, err := newProxy(e.opts.Network, addr)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	e.track(px)
	s := e.dial(e.dialConfig(px.Addr(), cfg.Passcode)) // no timings of its own
	idle, idleA := e.pair(ep, s)
	busy, busyA := e.pair(ep, s)
	if err := exchange(idle, idleA, "before idling"); err != nil {
		t.Fatal(err)
	}
	// A multiplexing transport holds one link for both streams; a
	// one-link-per-stream transport holds one per stream plus its idle
	// pool. Either way a live agent's count must never fall below what it
	// was once both streams were bound: a drop is a link the connector
	// closed for silence.
	sr, stats := ep.(sdk.StatsReporter)
	var base int
	if stats {
		base = sr.Stats().Links
		if base < 1 {
			t.Fatalf("Stats().Links = %d with two streams bound, want at least 1", base)
		}
	}
	end := time.Now().Add(3 * th)
	for time.Now().Before(end) {
		if stats {
			if n := sr.Stats().Links; n < base {
				t.Fatalf("Stats().Links fell to %d (was %d) while a live agent that set no timings idled (threshold %v): it was not told the threshold, or beats too late", n, base, th)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := exchange(idle, idleA, "after idling three thresholds"); err != nil {
		t.Fatalf("an idle stream of a live agent that set no timings was dropped: %v", err)
	}
	go func() { // the agent would read; it is about to freeze
		buf := make([]byte, 32<<10)
		for {
			if _, err := busyA.Read(buf); err != nil {
				return
			}
		}
	}()
	go func() { // the connector keeps writing into the frozen agent
		buf := make([]byte, 16<<10)
		for {
			if _, err := busy.Write(buf); err != nil {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	px.Stall()
	start := time.Now()
	slack := th + 5*time.Second
	ends := make(chan error, 2)
	go func() { ends <- readEnds(idle, th+slack) }()
	go func() { ends <- readEnds(busy, th+slack) }()
	for _, name := range []string{"one", "the other"} {
		if err := <-ends; err != nil {
			t.Errorf("%s of the connector's streams (idle, mid-transfer) outlived an agent frozen for its %v threshold: %v", name, th, err)
		}
	}
	t.Logf("the connector's streams ended by %v after the agent froze (threshold %v)", time.Since(start).Round(time.Millisecond), th)
	if stats {
		deadline := start.Add(th + slack)
		for sr.Stats().Links != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := sr.Stats().Links; n != 0 {
			t.Errorf("Stats().Links = %d after the only agent froze, want 0", n)
		}
	}
	if err := readEnds(idleA, th+slack-time.Since(start)); err != nil {
		t.Errorf("the agent's stream outlived a connector silent for the %v threshold it was told: %v", th, err)
	}
}
