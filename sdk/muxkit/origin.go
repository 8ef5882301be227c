package muxkit

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// HeaderTimeout bounds how long [Session.Accept] waits for the origin
// header of a new stream on a [Version3] link, and how long
// [Endpoint.Open] may take to write it.
const HeaderTimeout = 10 * time.Second

// AppendOriginHeader appends the origin header a connector writes at the
// start of a stream it opens on a [Version3] link: o's wire form when ok,
// else an empty header (one zero byte).
func AppendOriginHeader(b []byte, o sdk.Origin, ok bool) []byte {
	var enc []byte
	if ok {
		var err error
		if enc, err = o.AppendBinary(make([]byte, 0, sdk.MaxOriginLen)); err != nil {
			enc = nil
		}
	}
	b = append(b, byte(len(enc)))
	return append(b, enc...)
}

// ReadOriginHeader reads the origin header at the start of a stream the
// connector opened on a [Version3] link: at most 1+sdk.MaxOriginLen bytes,
// never more than the header. ok is false for an empty header. A length
// over sdk.MaxOriginLen or an origin that does not parse is an error
// wrapping errProtocol (the stream is then dropped); r's errors are
// returned as they are.
func ReadOriginHeader(r io.Reader, errProtocol error) (o sdk.Origin, ok bool, err error) {
	if errProtocol == nil {
		errProtocol = ErrProtocol
	}
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return o, false, err
	}
	if n[0] == 0 {
		return o, false, nil
	}
	if int(n[0]) > sdk.MaxOriginLen {
		return o, false, fmt.Errorf("%w: origin header of %d bytes", errProtocol, n[0])
	}
	buf := make([]byte, n[0])
	if _, err := io.ReadFull(r, buf); err != nil {
		return o, false, err
	}
	if err := o.UnmarshalBinary(buf); err != nil {
		return o, false, fmt.Errorf("%w: origin header: %w", errProtocol, err)
	}
	return o, true, nil
}

// originStream is a stream whose connector sent its origin. It reports it
// ([sdk.OriginStream]) and keeps the stream's half-close.
type originStream struct {
	Stream
	origin sdk.Origin
}

// Origin implements [sdk.OriginStream].
func (s *originStream) Origin() (sdk.Origin, bool) { return s.origin, true }

// NetConn returns the wrapped stream.
func (s *originStream) NetConn() net.Conn { return s.Stream }

// CloseWrite implements [sdk.CloseWriter] when the wrapped stream does.
func (s *originStream) CloseWrite() error {
	if cw, ok := s.Stream.(sdk.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("muxkit: %T cannot half-close", s.Stream)
}

// readWaiter is a stream that can wait for bytes without taking them
// (transports/quic's and transports/yamux's: sdk/pipe copies from one
// without holding a buffer while it is idle).
type readWaiter interface{ WaitRead() error }

// waitOriginStream is an originStream over a readWaiter, which keeps its
// WaitRead.
type waitOriginStream struct{ originStream }

// WaitRead is the wrapped stream's.
func (s *waitOriginStream) WaitRead() error { return s.Stream.(readWaiter).WaitRead() }

// withOrigin wraps st to report origin o, keeping its WaitRead if any.
func withOrigin(st Stream, o sdk.Origin) net.Conn {
	if _, ok := st.(readWaiter); ok {
		return &waitOriginStream{originStream{Stream: st, origin: o}}
	}
	return &originStream{Stream: st, origin: o}
}

var (
	_ sdk.OriginStream = (*originStream)(nil)
	_ sdk.CloseWriter  = (*originStream)(nil)
)
