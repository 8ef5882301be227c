package muxkit

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/iofog/iofog-connector/sdk/admission"
)

// Enter takes a pending-handshake place for the source of addr (see
// [admission.Source]): a transport calls it as a connection arrives and
// calls leave once the handshake is over, passed or failed. When the
// source already has [admission.PendingPerSource] handshakes pending, ok
// is false: the transport refuses the connection at once, and the refusal
// is counted and logged in aggregate.
func (ep *Endpoint) Enter(addr net.Addr) (leave func(), ok bool) {
	return ep.gate.Enter(addr)
}

// Failed counts a connection from addr that did not become a link, for
// reason (wrong passcode, timeout...; see [admission.Reason]), in
// [sdk.EndpointStats.Failed] and in a line per source per interval at
// INFO. Failures while the endpoint closes are not counted.
func (ep *Endpoint) Failed(addr net.Addr, reason string) {
	if ep.ctx.Err() == nil {
		ep.gate.Fail(addr, reason)
	}
}

// Fail records that the transport's accept loop stopped for good with
// err: [Endpoint.Done] is closed and [Endpoint.Err] returns err. The
// endpoint keeps its links until Close. [Serve] calls it.
func (ep *Endpoint) Fail(err error) {
	ep.gate.Stop(fmt.Errorf("%s: accepting agent connections: %w", ep.name, err))
}

// Done implements [sdk.Stopper]: it is closed by Close, or by [Endpoint.Fail].
func (ep *Endpoint) Done() <-chan struct{} { return ep.gate.Done() }

// Err implements [sdk.Stopper]: the error given to [Endpoint.Fail], or nil.
func (ep *Endpoint) Err() error { return ep.gate.Err() }

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
		return admission.ReasonBadPasscode
	case a == AnswerLinkLimit:
		return admission.ReasonLinkLimit
	case a == AnswerIncompatible:
		return admission.ReasonIncompatible
	}
	return admission.ReasonGone
}
