package pipe

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// waitCount waits up to 10s for n to reach want: the pipe adds a transfer
// just after the destination took it, so the reader can be a hair ahead.
func waitCount(t *testing.T, what string, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d while the relay runs, want %d", what, n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestJoinCountsLiveBytes checks, on each copy path, that Options.AToB and
// BToA move with the bytes while the relay is still running, with and
// without an idle timeout, and that the totals match Result at the end.
func TestJoinCountsLiveBytes(t *testing.T) {
	for _, p := range idlePaths {
		for _, idle := range []time.Duration{0, time.Minute} {
			t.Run(p.name+"/idle="+idle.String(), func(t *testing.T) {
				watchdog(t, time.Minute)
				left, a := p.mkA(t)
				b, right := p.mkB(t)
				var ab, ba atomic.Int64
				done := make(chan joinOutcome, 1)
				go func() {
					res, err := JoinWith(context.Background(), a, b, Options{IdleTimeout: idle, AToB: &ab, BToA: &ba})
					done <- joinOutcome{res, err}
				}()
				exchange(t, left, right, "first bytes a to b")
				waitCount(t, "AToB", &ab, 18)
				exchange(t, right, left, "then b to a")
				waitCount(t, "BToA", &ba, 11)
				exchange(t, left, right, "more")
				waitCount(t, "AToB", &ab, 22)
				for _, c := range []net.Conn{left, right} {
					c.Close()
				}
				out := <-done
				if out.res.AToB != ab.Load() || out.res.BToA != ba.Load() {
					t.Errorf("Result %+v, live counts %d/%d", out.res, ab.Load(), ba.Load())
				}
			})
		}
	}
}
