package agent

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterAndCaps(t *testing.T) {
	b := newBackoff(time.Second, 8*time.Second)
	for i, base := range []time.Duration{1, 2, 4, 8, 8, 8} {
		base *= time.Second
		got := b.next()
		if got < base/2 || got > base {
			t.Errorf("attempt %d: delay %v outside [%v, %v]", i, got, base/2, base)
		}
	}
	b.reset()
	if got := b.next(); got > time.Second {
		t.Errorf("after reset: delay %v, want at most 1s", got)
	}
	// Jitter: 50 draws at the cap are not all equal.
	seen := map[time.Duration]bool{}
	for range 50 {
		b.cur = b.max
		seen[b.next()] = true
	}
	if len(seen) < 2 {
		t.Errorf("50 delays at the cap were all %v: no jitter", seen)
	}
}
