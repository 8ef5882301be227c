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

// ErrAborted is returned by a stream's Write once the peer closed the
// stream without reading it to its end (hello version 4 sessions): as
// with a TCP reset, nothing more written would be read.
var ErrAborted = errors.New("yamux: the peer closed the stream and reads no more")
