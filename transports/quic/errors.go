package quic

import "errors"

// ErrProtocol is returned by [Transport.Dial] when the connector answered
// the handshake with bytes this package does not understand.
var ErrProtocol = errors.New("quic: handshake protocol error")

// ErrPinMismatch is returned by [Transport.Dial] when the connector's
// certificate does not match [Config.PinSHA256].
var ErrPinMismatch = errors.New("quic: connector certificate does not match the pinned fingerprint")
