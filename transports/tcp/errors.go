package tcp

import "errors"

var (
	// ErrProtocol is returned (wrapped) when a peer sends bytes that are
	// not the tcp transport's protocol, such as an unknown frame on an idle
	// link.
	ErrProtocol = errors.New("tcp: protocol error")
	// ErrBindTimeout is returned by a session's Accept (wrapped) and logged
	// by the endpoint when a bind frame is not acknowledged in time.
	ErrBindTimeout = errors.New("tcp: bind not acknowledged in time")
)
