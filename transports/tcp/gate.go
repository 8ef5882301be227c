package tcp

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/iofog/iofog-connector/sdk/admission"
)

// gate is an endpoint's admission step, apart from the handshake itself:
// it caps the handshakes one source has pending, counts and logs in
// aggregate the connections that fail or are refused, and records how the
// accept loop ended.
type gate struct {
	pending  *admission.Limiter
	failures *admission.Tally
	failed   atomic.Int64

	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error
}

func newGate(log *slog.Logger, maxLinks int) *gate {
	return &gate{
		pending:  admission.NewLimiter(admission.PendingPerSource(maxLinks), 0),
		failures: admission.NewTally(admission.TallyConfig{Logger: log, Message: "agent handshakes failed or refused"}),
		done:     make(chan struct{}),
	}
}

// enter takes a pending-handshake place for c's source; when the source
// is at its cap, c is closed, counted and false returned. leave is called
// once the handshake is over, passed or failed.
func (g *gate) enter(c net.Conn) (leave func(), ok bool) {
	src := admission.Source(c.RemoteAddr())
	leave, ok = g.pending.Acquire(src)
	if !ok {
		c.Close()
		g.fail(src, "too many pending handshakes from this source")
	}
	return leave, ok
}

// fail counts a connection of src that did not become a link.
func (g *gate) fail(src, reason string) {
	g.failed.Add(1)
	g.failures.Add(src, reason)
}

// stop records that the accept loop ended: err is nil after Close.
func (g *gate) stop(err error) {
	g.once.Do(func() {
		g.mu.Lock()
		g.err = err
		g.mu.Unlock()
		close(g.done)
	})
}

// failedHandshake counts a failed handshake of raw unless the endpoint is
// closing (its own deadline then ended the handshake).
func (ep *endpoint) failedHandshake(raw net.Conn, reason string) {
	if ep.ctx.Err() == nil {
		ep.gate.fail(admission.Source(raw.RemoteAddr()), reason)
	}
}

// Done implements [sdk.Stopper].
func (ep *endpoint) Done() <-chan struct{} { return ep.gate.done }

// Err implements [sdk.Stopper].
func (ep *endpoint) Err() error {
	ep.gate.mu.Lock()
	defer ep.gate.mu.Unlock()
	return ep.gate.err
}

// refusalReason names why a hello of ours did not make a link.
func refusalReason(answer byte, err error) string {
	switch {
	case err != nil:
		return admission.Reason(err)
	case answer == answerBadPasscode:
		return "wrong passcode"
	case answer == answerLinkLimit:
		return "link limit reached"
	case answer == answerIncompatible:
		return "incompatible protocol version"
	}
	return "gone during the handshake"
}

// legacyReason names why a legacy passcode was refused.
func legacyReason(err error) string {
	if err != nil {
		return admission.Reason(err)
	}
	return "wrong passcode"
}
