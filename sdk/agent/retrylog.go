package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Pacing of the agent's retry lines.
const (
	// retryLogEvery is the longest an outage goes without a line.
	retryLogEvery = 5 * time.Minute
	// retryLogQuiet is how long without a failure ends an outage, when no
	// success said so first (a lazy session cannot tell that its links
	// work again until a stream arrives). Retries come at least every
	// DefaultMaxBackoff during an outage.
	retryLogQuiet = 2 * DefaultMaxBackoff
)

// retryLog thins the agent's retry lines so that they back off with the
// retries: the first failure of an outage is logged, then the 2nd, 4th,
// 8th... (and at least one line every retryLogEvery), each with the
// failures so far; the first success after an outage logs one INFO line.
// The workers of a pool share one; it is safe for concurrent use.
type retryLog struct {
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	failures int
	since    time.Time // first failure of the outage
	lastFail time.Time
	lastLine time.Time
}

func newRetryLog(log *slog.Logger) *retryLog { return &retryLog{log: log, now: time.Now} }

// failed records a failure and logs msg with err at level when its turn
// comes.
func (l *retryLog) failed(ctx context.Context, level slog.Level, msg string, err error) {
	l.mu.Lock()
	now := l.now()
	if l.failures > 0 && now.Sub(l.lastFail) > retryLogQuiet {
		l.failures = 0 // a quiet gap: the last outage ended unnoticed
	}
	if l.failures == 0 {
		l.since = now
	}
	l.failures++
	l.lastFail = now
	n := l.failures
	due := n&(n-1) == 0 || now.Sub(l.lastLine) >= retryLogEvery
	if due {
		l.lastLine = now
	}
	since := l.since
	l.mu.Unlock()
	if !due {
		return
	}
	attrs := []any{"err", err, "failures", n}
	if n > 1 {
		attrs = append(attrs, "since", now.Sub(since).Round(time.Second), "next_line_at_failure", nextPow2(n))
	}
	l.log.Log(ctx, level, msg, attrs...)
}

// ok records a success; after an outage it logs one INFO line.
func (l *retryLog) ok(ctx context.Context) {
	l.mu.Lock()
	n, since := l.failures, l.since
	l.failures = 0
	now := l.now()
	l.mu.Unlock()
	if n > 0 {
		l.log.Log(ctx, slog.LevelInfo, "connector reachable again", "failures", n, "outage", now.Sub(since).Round(time.Second))
	}
}

// nextPow2 returns the least power of two above n.
func nextPow2(n int) int {
	p := 1
	for p <= n {
		p <<= 1
	}
	return p
}
