package yamux

import "errors"

// ErrProtocol is returned by [Transport.Dial] when the connector answered
// the handshake with bytes this package does not understand.
var ErrProtocol = errors.New("yamux: handshake protocol error")
