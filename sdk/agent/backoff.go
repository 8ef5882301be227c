package agent

import (
	"context"
	"math/rand/v2"
	"time"
)

// Default backoff bounds.
const (
	// DefaultMinBackoff is the first retry delay when a config's
	// MinBackoff is zero.
	DefaultMinBackoff = time.Second
	// DefaultMaxBackoff caps the retry delay when a config's MaxBackoff is
	// zero.
	DefaultMaxBackoff = 30 * time.Second
)

// backoff is an exponential backoff with jitter: each delay is drawn from
// [d/2, d), and d doubles up to max. It is not safe for concurrent use.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(lo, hi time.Duration) *backoff {
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	hi = max(hi, lo)
	return &backoff{min: lo, max: hi, cur: lo}
}

// next returns the delay before the next attempt and grows the backoff.
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	half := d / 2
	return half + rand.N(half+1)
}

// reset starts over after a success.
func (b *backoff) reset() { b.cur = b.min }

// wait sleeps for the next delay; false means ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
