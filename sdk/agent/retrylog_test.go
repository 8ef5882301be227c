package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type lineRecorder struct {
	mu    sync.Mutex
	lines []slog.Record
}

func (r *lineRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *lineRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, rec.Clone())
	return nil
}
func (r *lineRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *lineRecorder) WithGroup(string) slog.Handler      { return r }

func (r *lineRecorder) count(level slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if l.Level == level {
			n++
		}
	}
	return n
}

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestRetryLog() (*retryLog, *lineRecorder, *fakeClock) {
	rec := &lineRecorder{}
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newRetryLog(slog.New(rec))
	l.now = clk.now
	return l, rec, clk
}

func TestRetryLogBacksOffWithFailures(t *testing.T) {
	l, rec, clk := newTestRetryLog()
	ctx := context.Background()
	errDown := errors.New("connection refused")
	for range 100 {
		l.failed(ctx, slog.LevelWarn, "agent link failed; retrying", errDown)
		clk.add(time.Second)
	}
	// Failures 1, 2, 4, 8, 16, 32 and 64.
	if got := rec.count(slog.LevelWarn); got != 7 {
		t.Fatalf("%d WARN lines for 100 failures, want 7", got)
	}
	l.ok(ctx)
	l.ok(ctx)
	if got := rec.count(slog.LevelInfo); got != 1 {
		t.Fatalf("%d INFO lines after recovery, want 1", got)
	}
	// A new outage is logged at once.
	l.failed(ctx, slog.LevelWarn, "agent link failed; retrying", errDown)
	if got := rec.count(slog.LevelWarn); got != 8 {
		t.Fatalf("the first failure of a new outage was not logged (%d lines)", got)
	}
}

func TestRetryLogQuietGapStartsNewOutage(t *testing.T) {
	l, rec, clk := newTestRetryLog()
	ctx := context.Background()
	for range 5 {
		l.failed(ctx, slog.LevelWarn, "x", errors.New("down"))
	}
	before := rec.count(slog.LevelWarn) // 1, 2, 4
	clk.add(retryLogQuiet + time.Second)
	l.failed(ctx, slog.LevelWarn, "x", errors.New("down"))
	if got := rec.count(slog.LevelWarn); got != before+1 {
		t.Fatalf("a failure after a quiet gap was not logged as a new outage")
	}
}

func TestRetryLogLongOutageBounded(t *testing.T) {
	l, rec, clk := newTestRetryLog()
	ctx := context.Background()
	// An hour of failures every 30 s from 8 workers.
	for range 120 {
		for range 8 {
			l.failed(ctx, slog.LevelWarn, "x", errors.New("down"))
		}
		clk.add(30 * time.Second)
	}
	got := rec.count(slog.LevelWarn)
	if got < 10 || got > 10+12 { // 960 failures: 10 powers of two, plus at most one per 5 min
		t.Fatalf("%d lines for an hour of failures, want 10 to 22", got)
	}
}
