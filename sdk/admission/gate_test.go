package admission

import (
	"errors"
	"log/slog"
	"net"
	"testing"
)

// TestGateCapsPendingPerSource: one source gets at most its cap of
// pending handshakes; another source is not held back; a place given
// back can be taken again; refusals and failures are counted.
func TestGateCapsPendingPerSource(t *testing.T) {
	g := NewGate(nil, 60)
	defer g.Close()
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	b := &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 2}
	limit := PendingPerSource(60)
	if limit < 120 {
		t.Fatalf("per-source cap %d for 60 links, want at least twice the links", limit)
	}
	var leaves []func()
	for i := range limit {
		leave, ok := g.Enter(a)
		if !ok {
			t.Fatalf("pending handshake %d of %d refused", i+1, limit)
		}
		leaves = append(leaves, leave)
	}
	if _, ok := g.Enter(a); ok {
		t.Fatal("a handshake over the per-source cap was let in")
	}
	leave, ok := g.Enter(b)
	if !ok {
		t.Fatal("another source was refused")
	}
	if got := g.Pending(); got != limit+1 {
		t.Errorf("Pending() = %d, want %d", got, limit+1)
	}
	leave()
	leaves[0]()
	leaves[0]() // only the first call counts
	if got := g.Pending(); got != limit-1 {
		t.Errorf("Pending() = %d after two leaves, want %d", got, limit-1)
	}
	if _, ok := g.Enter(a); !ok {
		t.Fatal("a freed place was not given back")
	}
	g.Fail(a, "wrong passcode")
	if got := g.Failed(); got != 2 {
		t.Errorf("Failed() = %d, want 2 (one refusal, one failure)", got)
	}
}

// TestGateStop: Done is closed by the first Stop, whose error Err keeps.
func TestGateStop(t *testing.T) {
	g := NewGate(nil, 0)
	defer g.Close()
	select {
	case <-g.Done():
		t.Fatal("Done closed before Stop")
	default:
	}
	if err := g.Err(); err != nil {
		t.Fatalf("Err() = %v before Stop, want nil", err)
	}
	cause := errors.New("accept: invalid argument")
	g.Stop(cause)
	g.Stop(nil)
	select {
	case <-g.Done():
	default:
		t.Fatal("Done open after Stop")
	}
	if err := g.Err(); !errors.Is(err, cause) {
		t.Errorf("Err() = %v, want the first Stop's error", err)
	}
}

// TestGateCloseLogsInAggregate: failures make no line each; Close writes
// one line for the source, with the count and the last reason.
func TestGateCloseLogsInAggregate(t *testing.T) {
	rec := &recorder{}
	g := NewGate(slog.New(rec), 0)
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	for range 300 {
		g.Fail(a, "timeout")
	}
	g.Fail(a, "wrong passcode")
	if got := len(rec.records()); got != 0 {
		t.Fatalf("%d lines before the interval ended, want 0", got)
	}
	g.Close()
	g.Close()
	recs := rec.records()
	if len(recs) != 1 {
		t.Fatalf("%d lines after Close, want 1", len(recs))
	}
	at := attrs(recs[0])
	if recs[0].Message != GateMessage || at["source"] != "192.0.2.1" || at["count"] != "301" || at["last_reason"] != "wrong passcode" {
		t.Errorf("line %q %v, want %q for 192.0.2.1, count 301, last reason wrong passcode", recs[0].Message, at, GateMessage)
	}
	if got := g.Failed(); got != 301 {
		t.Errorf("Failed() = %d, want 301", got)
	}
}
