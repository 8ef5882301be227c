package muxkit

import "errors"

// ErrProtocol is returned by [Handshake.ReadHello] and
// [Handshake.ReadAnswer] when the peer sent bytes that do not follow the
// handshake and [Handshake.ErrProtocol] is nil.
var ErrProtocol = errors.New("muxkit: handshake protocol error")
