package yamux

import (
	"errors"
	"fmt"
	"io"
)

// ErrProtocol is returned by [Transport.Dial] when the connector answered
// the handshake with bytes this package does not understand.
var ErrProtocol = errors.New("yamux: handshake protocol error")

// ErrSessionLost is returned by a stream's Read and Write once its session
// has ended (the peer stopped answering keepalives within the heartbeat
// threshold, or the connection broke) before the stream did. It wraps
// io.ErrUnexpectedEOF.
var ErrSessionLost = fmt.Errorf("yamux: the session ended before the stream did: %w", io.ErrUnexpectedEOF)
