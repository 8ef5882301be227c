package quic

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	quicgo "github.com/quic-go/quic-go"
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

	closed  atomic.Bool
	once    sync.Once
	rd, wd  atomic.Int64 // deadlines, unix nanoseconds; 0 means none
	onClose func()       // set before the stream is handed out
}

// codeClosed is the stream error code of CancelRead in Close.
const codeClosed quicgo.StreamErrorCode = 0

func newStream(st *quicgo.Stream, c *quicgo.Conn) *stream {
	return &stream{st: st, local: c.LocalAddr(), peer: c.RemoteAddr()}
}

func past(d *atomic.Int64) bool {
	n := d.Load()
	return n != 0 && time.Now().UnixNano() >= n
}

// Read implements net.Conn.
func (s *stream) Read(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if past(&s.rd) {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := s.st.Read(b)
	if err != nil && s.closed.Load() {
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
	if s.closed.Load() {
		return net.ErrClosed
	}
	if past(&s.rd) {
		return os.ErrDeadlineExceeded
	}
	var b [1]byte
	_, err := s.st.Peek(b[:])
	switch {
	case err == nil, err == io.EOF:
		return nil
	case s.closed.Load():
		return net.ErrClosed
	}
	return mapErr(err)
}

// Write implements net.Conn.
func (s *stream) Write(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if past(&s.wd) {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := s.st.Write(b)
	if err != nil && s.closed.Load() {
		return n, net.ErrClosed
	}
	return n, mapErr(err)
}

// CloseWrite implements sdk.CloseWriter: the peer reads io.EOF after the
// bytes written; reads here go on.
func (s *stream) CloseWrite() error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	return mapErr(s.st.Close())
}

// Close implements net.Conn: bytes already written are still delivered,
// then the peer reads io.EOF; the peer's further writes fail; this
// stream's pending Read and Write return net.ErrClosed.
func (s *stream) Close() error {
	first := false
	s.once.Do(func() {
		first = true
		s.closed.Store(true)
		s.st.SetWriteDeadline(time.Unix(1, 0)) // unblock a pending Write
		s.st.CancelRead(codeClosed)
		s.st.Close()
		if s.onClose != nil {
			s.onClose()
		}
	})
	if !first {
		return net.ErrClosed
	}
	return nil
}

// OnClose implements muxkit.Stream: f runs at the first Close.
func (s *stream) OnClose(f func()) { s.onClose = f }

// LocalAddr implements net.Conn: the connection's local address.
func (s *stream) LocalAddr() net.Addr { return s.local }

// RemoteAddr implements net.Conn: the connection's peer address.
func (s *stream) RemoteAddr() net.Addr { return s.peer }

// SetDeadline implements net.Conn.
func (s *stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (s *stream) SetReadDeadline(t time.Time) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	s.rd.Store(nanos(t))
	return s.st.SetReadDeadline(t)
}

// SetWriteDeadline implements net.Conn.
func (s *stream) SetWriteDeadline(t time.Time) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	s.wd.Store(nanos(t))
	return s.st.SetWriteDeadline(t)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func mapErr(err error) error {
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	}
	return fmt.Errorf("%s: %w", Name, err)
}
