package admission

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// GateMessage is the message of the lines a [Gate] logs, in aggregate, for
// the agent connections that failed or were refused.
const GateMessage = "agent handshakes failed or refused"

// Gate is the admission step of an endpoint that agents connect to, apart
// from the handshake itself: it caps the handshakes one source has pending
// ([Gate.Enter]), counts and logs in aggregate the connections that fail
// or are refused ([Gate.Fail], [Gate.Failed]), and records how the
// endpoint's accept loop ended ([Gate.Stop], [Gate.Done], [Gate.Err]). It
// is safe for concurrent use.
type Gate struct {
	pending  *Limiter
	failures *Tally
	failed   atomic.Int64
	byClass  [len(failureClasses)]atomic.Int64

	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error
}

// NewGate returns the gate of an endpoint that admits maxLinks links (zero:
// no link limit): one source may have [PendingPerSource](maxLinks)
// handshakes pending, and failures are logged to log (nil discards) at
// INFO, one line per source per [DefaultInterval], with [GateMessage].
// Call [Gate.Close] when the endpoint is closed.
func NewGate(log *slog.Logger, maxLinks int) *Gate {
	return &Gate{
		pending:  NewLimiter(PendingPerSource(maxLinks), 0),
		failures: NewTally(TallyConfig{Logger: log, Message: GateMessage}),
		done:     make(chan struct{}),
	}
}

// Enter takes a pending-handshake place for the source of addr (see
// [Source]): an endpoint calls it as a connection arrives and calls leave
// once the handshake is over, passed or failed; leave may be called more
// than once. When the source already has its cap of handshakes pending, ok
// is false: the endpoint refuses the connection at once, and the refusal
// is counted as a failure.
func (g *Gate) Enter(addr net.Addr) (leave func(), ok bool) {
	src := Source(addr)
	leave, ok = g.pending.Acquire(src)
	if !ok {
		g.count(src, ReasonPendingCap)
	}
	return leave, ok
}

// Fail counts a connection from addr that did not become a link, for
// reason (see [Reason]), in [Gate.Failed] and in the aggregated log lines.
func (g *Gate) Fail(addr net.Addr, reason string) {
	g.count(Source(addr), reason)
}

func (g *Gate) count(src, reason string) {
	g.failed.Add(1)
	g.byClass[classIndex(reason)].Add(1)
	g.failures.Add(src, reason)
}

// Failed returns how many connections failed or were refused since the
// gate was made.
func (g *Gate) Failed() int64 { return g.failed.Load() }

// FailedByReason splits [Gate.Failed] by [Class] of the reasons given,
// for [sdk.EndpointStats.FailedByReason]: nil while nothing failed, so a
// healthy endpoint's snapshot allocates nothing.
func (g *Gate) FailedByReason() map[string]int64 {
	if g.failed.Load() == 0 {
		return nil
	}
	m := make(map[string]int64, len(failureClasses))
	for i, c := range failureClasses {
		if n := g.byClass[i].Load(); n > 0 {
			m[c] = n
		}
	}
	return m
}

// Pending returns how many handshakes are pending now, from every source.
func (g *Gate) Pending() int { return g.pending.Len() }

// Stop records that the endpoint's accept loop ended, with err (nil when
// the endpoint was closed): [Gate.Done] is closed and [Gate.Err] returns
// err. Only the first call counts.
func (g *Gate) Stop(err error) {
	g.once.Do(func() {
		g.mu.Lock()
		g.err = err
		g.mu.Unlock()
		close(g.done)
	})
}

// Done returns a channel that the first [Gate.Stop] closes: what an
// endpoint's Done method (sdk.Stopper) returns.
func (g *Gate) Done() <-chan struct{} { return g.done }

// Err returns the error given to the first [Gate.Stop], or nil: what an
// endpoint's Err method (sdk.Stopper) returns.
func (g *Gate) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Close logs the failures counted since the last line, if any, and stops
// logging them; later failures are only counted in [Gate.Failed]. It does
// not stop the gate (see [Gate.Stop]) and is idempotent.
func (g *Gate) Close() { g.failures.Close() }
