package muxkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/iofog/iofog-connector/sdk/admission"
)

// gate is an endpoint's admission step: the cap on handshakes pending per
// source, the aggregated count of connections that did not become links,
// and how the accept loop ended.
type gate struct {
	pending  *admission.Limiter
	failures *admission.Tally
	failed   atomic.Int64

	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error
}

// Enter takes a pending-handshake place for the source of addr (see
// [admission.Source]): a transport calls it as a connection arrives and
// calls leave once the handshake is over, passed or failed. When the
// source already has [admission.PendingPerSource] handshakes pending, ok
// is false: the transport refuses the connection at once, and the refusal
// is counted and logged in aggregate.
func (ep *Endpoint) Enter(addr net.Addr) (leave func(), ok bool) {
	src := admission.Source(addr)
	leave, ok = ep.gate.pending.Acquire(src)
	if !ok {
		ep.countFailure(src, "too many pending handshakes from this source")
	}
	return leave, ok
}

// Failed counts a connection from addr that did not become a link, for
// reason (wrong passcode, timeout...; see [admission.Reason]), in
// [sdk.EndpointStats.Failed] and in a line per source per interval at
// INFO. Failures while the endpoint closes are not counted.
func (ep *Endpoint) Failed(addr net.Addr, reason string) {
	if ep.ctx.Err() == nil {
		ep.countFailure(admission.Source(addr), reason)
	}
}

func (ep *Endpoint) countFailure(src, reason string) {
	ep.gate.failed.Add(1)
	ep.gate.failures.Add(src, reason)
}

// Fail records that the transport's accept loop stopped for good with
// err: [Endpoint.Done] is closed and [Endpoint.Err] returns err. The
// endpoint keeps its links until Close. [Serve] calls it.
func (ep *Endpoint) Fail(err error) {
	ep.stop(fmt.Errorf("%s: accepting agent connections: %w", ep.name, err))
}

func (ep *Endpoint) stop(err error) {
	ep.gate.once.Do(func() {
		ep.gate.mu.Lock()
		ep.gate.err = err
		ep.gate.mu.Unlock()
		close(ep.gate.done)
	})
}

// Done implements [sdk.Stopper]: it is closed by Close, or by [Endpoint.Fail].
func (ep *Endpoint) Done() <-chan struct{} { return ep.gate.done }

// Err implements [sdk.Stopper]: the error given to [Endpoint.Fail], or nil.
func (ep *Endpoint) Err() error {
	ep.gate.mu.Lock()
	defer ep.gate.mu.Unlock()
	return ep.gate.err
}

// Serve is a transport's accept loop: it calls accept until the endpoint
// closes and runs admit for each connection under [Endpoint.Go]. Transient
// errors ([admission.Transient]: out of descriptors, buffers...) are
// retried with backoff, logged once per episode; any other error stops
// the loop and is reported by [Endpoint.Done] and [Endpoint.Err], so that
// the connector restarts the endpoint. Run Serve itself under
// [Endpoint.Go]. accept must return when its ctx ends.
func Serve[C any](ep *Endpoint, accept func(context.Context) (C, error), admit func(C)) {
	retry := admission.Retry{Logger: ep.log, What: "accepting agent connections"}
	for {
		c, err := accept(ep.ctx)
		if err != nil {
			if ep.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if retry.Wait(ep.ctx, err) {
				continue
			}
			if ep.ctx.Err() == nil {
				ep.log.Error("accepting agent connections stopped", "err", err)
				ep.Fail(err)
			}
			return
		}
		retry.Reset()
		ep.Go(func() { admit(c) })
	}
}

// Refusal names, for [Endpoint.Failed], why a hello did not make a link:
// the answer sent, or err when writing it failed.
func Refusal(a Answer, err error) string {
	switch {
	case err != nil:
		return admission.Reason(err)
	case a == AnswerBadPasscode:
		return "wrong passcode"
	case a == AnswerLinkLimit:
		return "link limit reached"
	case a == AnswerIncompatible:
		return "incompatible protocol version"
	}
	return "gone during the handshake"
}
