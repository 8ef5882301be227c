package pipe

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune [JoinWith]. The zero value gives [Join]'s behaviour.
type Options struct {
	// IdleTimeout, when positive, closes both streams once no byte has
	// been read from or written to either of them for that long, and
	// [JoinWith] then returns [ErrIdleTimeout]. A write that stays blocked
	// (the peer reads nothing) counts as idle. Zero or negative means no
	// idle timeout.
	IdleTimeout time.Duration
	// AToB and BToA, when not nil, are added the bytes of each transfer
	// a→b and b→a as the destination takes them (one atomic add per
	// transfer), so a live relay's traffic can be read while it runs.
	// [Result] still reports the totals; nil counts nothing.
	AToB, BToA *atomic.Int64
}

// ErrIdleTimeout is returned by [JoinWith] when it closed both streams
// because no byte moved for Options.IdleTimeout. It is a [net.Error] whose
// Timeout method reports true, and errors.Is(ErrIdleTimeout,
// os.ErrDeadlineExceeded) holds.
var ErrIdleTimeout error = idleTimeoutError{}

type idleTimeoutError struct{}

func (idleTimeoutError) Error() string   { return "pipe: relay idle timeout" }
func (idleTimeoutError) Timeout() bool   { return true }
func (idleTimeoutError) Temporary() bool { return false }
func (idleTimeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

// activity is the time of a relay's last transfer. A nil *activity records
// nothing, so the copy loops pay one nil check when no timeout is set.
type activity struct {
	start time.Time    // carries the monotonic clock
	last  atomic.Int64 // nanoseconds from start to the last transfer
}

func newActivity() *activity { return &activity{start: time.Now()} }

// touch records a transfer now: one monotonic clock read and one atomic
// store, whatever the size of the transfer.
func (a *activity) touch() {
	if a != nil {
		a.last.Store(int64(time.Since(a.start)))
	}
}

// idle returns how long ago the last transfer was.
func (a *activity) idle() time.Duration {
	return time.Since(a.start) - time.Duration(a.last.Load())
}

// meter records one direction's transfers: in act, shared by both
// directions (the idle timeout), and in n, that direction's live byte
// count. A nil *meter records nothing, so the copy loops pay one nil check
// when neither is asked for; act and n may each be nil.
type meter struct {
	act *activity
	n   *atomic.Int64
}

// newMeter returns a meter, or nil when it would record nothing.
func newMeter(act *activity, n *atomic.Int64) *meter {
	if act == nil && n == nil {
		return nil
	}
	return &meter{act: act, n: n}
}

// touch records bytes read from the source (activity only).
func (m *meter) touch() {
	if m != nil {
		m.act.touch()
	}
}

// moved records n bytes the destination took.
func (m *meter) moved(n int64) {
	if m != nil {
		m.act.touch()
		if m.n != nil {
			m.n.Add(n)
		}
	}
}

// idleTimer is the one timer of a relay with an idle timeout. It fires at
// the earliest instant the relay can have been idle for d, and then either
// re-arms for the remainder or expires.
type idleTimer struct {
	mu      sync.Mutex
	t       *time.Timer
	done    bool // stopped or expired; guarded by mu
	expired atomic.Bool
}

// watch calls expire once a has seen no transfer for d, unless stop is
// called first.
func (a *activity) watch(d time.Duration, expire func()) *idleTimer {
	w := &idleTimer{}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(d, func() {
		idle := a.idle()
		w.mu.Lock()
		if w.done {
			w.mu.Unlock()
			return
		}
		if idle < d {
			w.t.Reset(d - idle)
			w.mu.Unlock()
			return
		}
		w.done = true
		w.expired.Store(true)
		w.mu.Unlock()
		expire()
	})
	return w
}

// stop disarms the timer; after it returns the timer never re-arms.
func (w *idleTimer) stop() {
	w.mu.Lock()
	w.done = true
	w.t.Stop()
	w.mu.Unlock()
}

// touchReader records a transfer on each read that returns bytes. It also
// hides any WriterTo of the source, as the plain copy path does.
type touchReader struct {
	r io.Reader
	m *meter
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.m.touch()
	}
	return n, err
}

// touchWriter records the bytes of each write that takes some.
type touchWriter struct {
	w io.Writer
	m *meter
}

func (t touchWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if n > 0 {
		t.m.moved(int64(n))
	}
	return n, err
}
