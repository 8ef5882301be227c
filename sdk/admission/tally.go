package admission

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Defaults of [TallyConfig].
const (
	// DefaultInterval is how often a tally logs what it counted.
	DefaultInterval = 10 * time.Second
	// DefaultMaxSources is how many sources a tally tracks per interval.
	DefaultMaxSources = 256
	// maxReason bounds the length of a reason kept for a source.
	maxReason = 120
)

// OtherSources is the source named in a [Tally] line that sums up the
// events of the sources beyond TallyConfig.MaxSources.
const OtherSources = "other sources"

// TallyConfig configures [NewTally].
type TallyConfig struct {
	// Logger receives the lines. Nil discards them (the tally still
	// counts).
	Logger *slog.Logger
	// Level of the lines. The zero value is slog.LevelInfo.
	Level slog.Level
	// Message is the text of every line, as in "agent handshakes failed".
	// Required.
	Message string
	// Interval is how long events are gathered before they are logged,
	// one line per source. Zero means [DefaultInterval].
	Interval time.Duration
	// MaxSources caps the sources tracked in one interval; the events of
	// further sources are summed in one line for [OtherSources]. Zero
	// means [DefaultMaxSources].
	MaxSources int
}

// Tally logs repeated events in aggregate: at the end of each interval in
// which something happened it writes, for each source, one line with the
// message, the source, the count and the last reason, then forgets them.
// Nothing runs while nothing happens. Its memory is bounded by MaxSources
// entries of bounded size. It is safe for concurrent use.
//
// A line looks like (with slog's text handler):
//
//	level=INFO msg="agent handshakes failed" source=203.0.113.9 count=312 last_reason="wrong passcode" interval=10s
type Tally struct {
	cfg   TallyConfig
	log   *slog.Logger
	total atomic.Int64

	mu       sync.Mutex
	window   map[string]*tallyEntry
	others   int64
	timer    *time.Timer
	closed   bool
	flushing sync.WaitGroup
}

type tallyEntry struct {
	count  int64
	reason string
}

// NewTally returns a tally; call Close when done with it.
func NewTally(cfg TallyConfig) *Tally {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	if cfg.Message == "" {
		cfg.Message = "events"
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Tally{cfg: cfg, log: l, window: map[string]*tallyEntry{}}
}

// Add counts one event of src, for reason. After Close it is only counted
// in [Tally.Total].
func (t *Tally) Add(src, reason string) {
	t.total.Add(1)
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "..."
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	switch e := t.window[src]; {
	case e != nil:
		e.count++
		e.reason = reason
	case len(t.window) < t.cfg.MaxSources:
		t.window[src] = &tallyEntry{count: 1, reason: reason}
	default:
		t.others++
	}
	if t.timer == nil {
		t.flushing.Add(1)
		t.timer = time.AfterFunc(t.cfg.Interval, t.flush)
	}
}

// Total returns how many events were added since the tally was made.
func (t *Tally) Total() int64 { return t.total.Load() }

// flush logs and forgets the interval's events; it runs on the timer.
func (t *Tally) flush() {
	defer t.flushing.Done()
	t.mu.Lock()
	window, others := t.window, t.others
	t.window, t.others, t.timer = map[string]*tallyEntry{}, 0, nil
	t.mu.Unlock()
	t.write(window, others)
}

func (t *Tally) write(window map[string]*tallyEntry, others int64) {
	ctx := context.Background()
	if !t.log.Enabled(ctx, t.cfg.Level) {
		return
	}
	srcs := make([]string, 0, len(window))
	for s := range window {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	for _, s := range srcs {
		e := window[s]
		t.log.Log(ctx, t.cfg.Level, t.cfg.Message, "source", s, "count", e.count, "last_reason", e.reason, "interval", t.cfg.Interval)
	}
	if others > 0 {
		t.log.Log(ctx, t.cfg.Level, t.cfg.Message, "source", OtherSources, "count", others, "interval", t.cfg.Interval,
			"note", "sources beyond the tracked maximum", "max_sources", t.cfg.MaxSources)
	}
}

// Close logs what the current interval gathered, if anything, and stops
// the tally. It is idempotent.
func (t *Tally) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	var window map[string]*tallyEntry
	var others int64
	if t.timer != nil && t.timer.Stop() {
		// The flush will not run: write its lines here.
		t.flushing.Done()
		window, others = t.window, t.others
		t.window, t.others, t.timer = map[string]*tallyEntry{}, 0, nil
	}
	// Otherwise a flush already fired; it takes the window itself.
	t.mu.Unlock()
	t.flushing.Wait()
	t.write(window, others)
}

// Reasons a handshake failed, as [Reason] and the transports name them in
// log lines; [Class] sorts them into the sdk.Failure* classes.
const (
	ReasonTimeout      = "timeout"
	ReasonClosed       = "closed during the handshake"
	ReasonReset        = "connection reset"
	ReasonRefused      = "refused"
	ReasonBadPasscode  = "wrong passcode"
	ReasonLinkLimit    = "link limit reached"
	ReasonPendingCap   = "too many pending handshakes from this source"
	ReasonIncompatible = "incompatible protocol version"
	ReasonGone         = "gone during the handshake"
)

// Reason describes a failed handshake's error briefly, for a [Tally]:
// [ReasonTimeout], [ReasonClosed], [ReasonReset], or the error's text (cut
// to a bounded length by Add).
func Reason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ReasonRefused
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonClosed
	case errors.Is(err, syscall.ECONNRESET):
		return ReasonReset
	}
	return err.Error()
}

// failureClasses are the classes [Class] returns, in [Gate]'s counter order.
var failureClasses = [...]string{sdk.FailureBadPasscode, sdk.FailureLimit, sdk.FailureTimeout, sdk.FailureClosed, sdk.FailureProtocol}

// Class sorts a reason given to [Gate.Fail] into one of the sdk.Failure*
// classes of [sdk.EndpointStats.FailedByReason]: the Reason* constants
// into theirs, and any other text (an error's, from [Reason]: bytes that
// are not the protocol, a failed TLS handshake) into sdk.FailureProtocol.
func Class(reason string) string { return failureClasses[classIndex(reason)] }

func classIndex(reason string) int {
	switch reason {
	case ReasonBadPasscode:
		return 0
	case ReasonLinkLimit, ReasonPendingCap, ReasonRefused:
		return 1
	case ReasonTimeout:
		return 2
	case ReasonClosed, ReasonReset, ReasonGone:
		return 3
	}
	return 4
}
