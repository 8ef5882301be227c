package tcp

import (
	"net"

	"github.com/iofog/iofog-connector/sdk/admission"
)

// failedHandshake counts a failed handshake of raw unless the endpoint is
// closing (its own deadline then ended the handshake).
func (ep *endpoint) failedHandshake(raw net.Conn, reason string) {
	if ep.ctx.Err() == nil {
		ep.gate.Fail(raw.RemoteAddr(), reason)
	}
}

// Done implements [sdk.Stopper].
func (ep *endpoint) Done() <-chan struct{} { return ep.gate.Done() }

// Err implements [sdk.Stopper].
func (ep *endpoint) Err() error { return ep.gate.Err() }

// refusalReason names why a hello of ours did not make a link.
func refusalReason(answer byte, err error) string {
	switch {
	case err != nil:
		return admission.Reason(err)
	case answer == answerBadPasscode:
		return admission.ReasonBadPasscode
	case answer == answerLinkLimit:
		return admission.ReasonLinkLimit
	case answer == answerIncompatible:
		return admission.ReasonIncompatible
	}
	return admission.ReasonGone
}

// legacyReason names why a legacy passcode was refused.
func legacyReason(err error) string {
	if err != nil {
		return admission.Reason(err)
	}
	return admission.ReasonBadPasscode
}
