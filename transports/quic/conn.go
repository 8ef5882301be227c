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

	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// stream adapts a *quicgo.Stream to net.Conn as the sdk expects it:
// addresses come from the connection, Close ends both directions (quic-go's
// own Close only sends FIN; here CancelRead tells the peer to stop sending
// too), CloseWrite is quic-go's Close, deadlines apply even when data or
// window is available, and timeouts are os.ErrDeadlineExceeded.
//
// Write hands quic-go the last chunk of each large enough write (up to
// aheadMax bytes) in the background and returns once it is copied, as a
// socket's write returns once its bytes are in the kernel's buffer:
// quic-go's own Write returns only when its bytes are packed into packets,
// so a relay copying socket to stream would otherwise alternate between
// reading the next chunk and sending this one instead of doing both.
type stream struct {
	st    *quicgo.Stream
	local net.Addr
	peer  net.Addr

	muxkit.StreamState // close once, the OnClose hook, deadlines (bound to st)

	wmu   sync.Mutex            // serialises Write and CloseWrite
	cur   atomic.Pointer[ahead] // the chunk being written in the background
	rest  []byte                // what a timed-out background write left unwritten; wmu
	restB *[]byte               // the buffer rest is in; wmu
}

// A write of at least aheadMin bytes writes its last aheadMax bytes (or
// all, when fewer) in the background; smaller ones are written at once.
const (
	aheadMin = 8 << 10
	aheadMax = 32 << 10
)

// aheadBufs holds the chunks being written in the background; a stream
// holds one only while a chunk is on its way, never while idle.
var aheadBufs = sync.Pool{New: func() any { b := make([]byte, aheadMax); return &b }}

// ahead is one chunk written in the background.
type ahead struct {
	done  chan struct{} // closed when the write returned
	abort chan struct{} // closed by Close: waiters stop waiting
	once  sync.Once     // closes abort
	buf   *[]byte
	data  []byte
	n     int   // set before done is closed
	err   error // set before done is closed
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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.settle(); err != nil {
		return 0, err
	}
	if len(b) < aheadMin {
		return s.write(b)
	}
	head, tail := b[:len(b)-min(len(b), aheadMax)], b[len(b)-min(len(b), aheadMax):]
	if len(head) > 0 {
		if n, err := s.write(head); err != nil {
			return n, err
		}
	}
	s.launch(tail)
	return len(b), nil
}

// write writes b to st and maps its error.
func (s *stream) write(b []byte) (int, error) {
	n, err := s.st.Write(b)
	if err != nil && s.IsClosed() {
		return n, net.ErrClosed
	}
	return n, mapErr(err)
}

// launch copies b (at most aheadMax bytes) and writes the copy in the
// background. The caller holds wmu and has settled the previous chunk.
func (s *stream) launch(b []byte) {
	bp := aheadBufs.Get().(*[]byte)
	a := &ahead{done: make(chan struct{}), abort: make(chan struct{}), buf: bp, data: (*bp)[:copy(*bp, b)]}
	s.cur.Store(a)
	go func() {
		a.n, a.err = s.st.Write(a.data)
		close(a.done)
	}()
}

// settle waits for the chunk being written in the background, then writes
// what an earlier one left unwritten when its deadline passed, and
// returns the error the next Write must return: the chunk's (the bytes
// left by a deadline are kept and written first by the next call), or
// net.ErrClosed once the stream is closed. The caller holds wmu.
func (s *stream) settle() error {
	if a := s.cur.Load(); a != nil {
		select {
		case <-a.done:
		case <-a.abort:
			return net.ErrClosed
		}
		s.cur.Store(nil)
		switch {
		case a.err == nil:
			aheadBufs.Put(a.buf)
		case errors.Is(a.err, os.ErrDeadlineExceeded) && !s.IsClosed():
			s.rest, s.restB = a.data[a.n:], a.buf
		default:
			if s.IsClosed() {
				return net.ErrClosed
			}
			return mapErr(a.err)
		}
	}
	if s.rest == nil {
		return nil
	}
	n, err := s.write(s.rest)
	s.rest = s.rest[n:]
	if err != nil {
		return err
	}
	aheadBufs.Put(s.restB)
	s.rest, s.restB = nil, nil
	return nil
}

// CloseWrite implements sdk.CloseWriter: the peer reads io.EOF after the
// bytes written; reads here go on.
func (s *stream) CloseWrite() error {
	if s.IsClosed() {
		return net.ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.settle(); err != nil {
		return err
	}
	return mapErr(s.st.Close())
}

// Close implements net.Conn: bytes already written are still delivered,
// then the peer reads io.EOF; the peer's further writes fail; this
// stream's pending Read and Write return net.ErrClosed. A chunk still
// being written in the background (see stream) is given up to
// lingerTimeout to go out, without Close waiting for it.
func (s *stream) Close() error {
	return s.CloseOnce(func() {
		s.st.CancelRead(codeClosed)
		if a := s.cur.Load(); a != nil {
			a.once.Do(func() { close(a.abort) }) // unblock a pending Write
			s.st.SetWriteDeadline(time.Now().Add(lingerTimeout))
			go func() {
				<-a.done
				s.st.Close()
			}()
			return
		}
		s.st.SetWriteDeadline(time.Unix(1, 0)) // unblock a pending Write
		s.st.Close()
	})
}

// lingerTimeout bounds how long a closed stream's last chunk may take.
const lingerTimeout = 10 * time.Second

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
