package quic

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// stream adapts a *quicgo.Stream to net.Conn as the sdk expects it:
// addresses come from the connection, Close ends both directions (quic-go's
// own Close only sends FIN; here CancelRead tells the peer to stop sending
// too), CloseWrite is quic-go's Close, deadlines apply even when data or
// window is available, and timeouts are os.ErrDeadlineExceeded.
type stream struct {
	st    *quicgo.Stream
	local net.Addr
	peer  net.Addr

	muxkit.StreamState // close once, the OnClose hook, deadlines (bound to st)
}

// codeClosed is the stream error code of CancelRead in Close.
const codeClosed quicgo.StreamErrorCode = 0

func newStream(st *quicgo.Stream, c *quicgo.Conn) *stream {
	s := &stream{st: st, local: c.LocalAddr(), peer: c.RemoteAddr()}
	s.Bind(st)
	return s
}

// Read implements net.Conn.
func (s *stream) Read(b []byte) (int, error) {
	if err := s.CheckRead(); err != nil {
		return 0, err
	}
	n, err := s.st.Read(b)
	if err != nil && s.IsClosed() {
		return n, net.ErrClosed
	}
	return n, mapErr(err)
}

// WaitRead blocks until Read would return without waiting, taking no
// bytes: bytes are there, the stream ended, it failed, or the read
// deadline passed. It returns nil at the end of the stream (Read then
// returns io.EOF) and otherwise what Read would. The relay (sdk/pipe)
// waits with it, so that an idle stream holds no copy buffer.
func (s *stream) WaitRead() error {
	return s.WaitReadWith(func() error {
		var b [1]byte
		_, err := s.st.Peek(b[:])
		return err
	}, mapErr)
}

// Write implements net.Conn.
func (s *stream) Write(b []byte) (int, error) {
	if err := s.CheckWrite(); err != nil {
		return 0, err
	}
	n, err := s.st.Write(b)
	if err != nil && s.IsClosed() {
		return n, net.ErrClosed
	}
	return n, mapErr(err)
}

// CloseWrite implements sdk.CloseWriter: the peer reads io.EOF after the
// bytes written; reads here go on.
func (s *stream) CloseWrite() error {
	if s.IsClosed() {
		return net.ErrClosed
	}
	return mapErr(s.st.Close())
}

// Close implements net.Conn: bytes already written are still delivered,
// then the peer reads io.EOF; the peer's further writes fail; this
// stream's pending Read and Write return net.ErrClosed.
func (s *stream) Close() error {
	return s.CloseOnce(func() {
		s.st.SetWriteDeadline(time.Unix(1, 0)) // unblock a pending Write
		s.st.CancelRead(codeClosed)
		s.st.Close()
	})
}

// LocalAddr implements net.Conn: the connection's local address.
func (s *stream) LocalAddr() net.Addr { return s.local }

// RemoteAddr implements net.Conn: the connection's peer address.
func (s *stream) RemoteAddr() net.Addr { return s.peer }

func mapErr(err error) error {
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	}
	return fmt.Errorf("%s: %w", Name, err)
}
