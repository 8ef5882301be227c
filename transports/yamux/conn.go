package yamux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// stream adapts a *yamux.Stream to the semantics the sdk expects of a
// net.Conn: Close ends both directions here (yamux's own Close only sends
// FIN), CloseWrite is yamux's Close, deadlines apply even when data or
// window is available, and timeouts wrap os.ErrDeadlineExceeded.
//
// yamux has no stream reset, so after Close the stream keeps reading and
// discarding what the peer still sends, for up to drain, so that the peer's
// writes do not stall on a window that never reopens. On a hello version 4
// session, Close before the peer's end of the stream also sends an abort on
// the control stream (see ctrl.go): the peer's writes then fail with
// [ErrAborted] and it closes its side, which ends the drain at once.
//
// When the session ends under an open stream (the peer stopped answering
// keepalives, or the connection broke), yamux lets the stream's reads
// return what was buffered and then io.EOF, as if the peer had closed it.
// The adapter reports [ErrSessionLost] instead, so that a relay tells a
// lost peer from a finished stream and closes both of its ends.
type stream struct {
	st *hyamux.Stream
	m  *ymux

	muxkit.StreamState
	rmu     sync.Mutex   // held by Read; the drain takes it over
	eof     atomic.Bool  // Read returned io.EOF: the peer writes no more
	aborted atomic.Bool  // the peer closed the stream and reads no more
	rdl     atomic.Int64 // the read deadline, unix nanoseconds; 0: none
}

// newStream adapts st, a stream of m; accepted says the peer opened it.
func newStream(st *hyamux.Stream, m *ymux, accepted bool) *stream {
	s := &stream{st: st, m: m}
	s.Bind(st)
	if m.aborting() && m.streams.add(s, accepted) {
		s.abort() // the peer closed it before it was accepted here
	}
	return s
}

// Read implements net.Conn.
func (s *stream) Read(b []byte) (int, error) {
	if err := s.CheckRead(); err != nil {
		return 0, err
	}
	s.rmu.Lock()
	n, err := s.st.Read(b)
	s.rmu.Unlock()
	if err != nil && s.IsClosed() {
		return n, net.ErrClosed
	}
	if err == io.EOF && s.m.s.IsClosed() {
		// The session ended: this EOF may be yamux closing the stream
		// for it, not the peer's FIN. Either way nothing more can cross,
		// in either direction.
		return n, ErrSessionLost
	}
	if err == io.EOF {
		s.eof.Store(true)
	}
	return n, mapErr(err)
}

// WaitRead blocks until Read would return without waiting, taking no
// bytes: bytes are there, the stream ended, it failed, or the read
// deadline passed. It returns nil at the end of the stream (Read then
// returns io.EOF, or ErrSessionLost) and otherwise what Read would. The
// relay (sdk/pipe) waits with it, so that an idle stream holds no copy
// buffer. (A zero-length yamux Read waits for data and takes none.)
func (s *stream) WaitRead() error {
	return s.WaitReadWith(func() error {
		s.rmu.Lock()
		defer s.rmu.Unlock()
		_, err := s.st.Read(nil)
		return err
	}, mapErr)
}

// Write implements net.Conn.
func (s *stream) Write(b []byte) (int, error) {
	if err := s.CheckWrite(); err != nil {
		return 0, err
	}
	if s.aborted.Load() {
		return 0, ErrAborted
	}
	// At most maxFrame per yamux frame: yamux bounds each frame write by
	// its ConnectionWriteTimeout, which a window-sized frame on a slow
	// link would exceed.
	var n int
	for len(b) > 0 {
		chunk := b[:min(len(b), maxFrame)]
		m, err := s.st.Write(chunk)
		n += m
		b = b[m:]
		if err != nil {
			if s.IsClosed() {
				return n, net.ErrClosed
			}
			if s.aborted.Load() {
				return n, ErrAborted
			}
			if s.m.s.IsClosed() {
				return n, ErrSessionLost
			}
			return n, mapErr(err)
		}
	}
	return n, nil
}

// maxFrame is the most one Write puts in a yamux frame.
const maxFrame = 64 << 10

// CloseWrite implements sdk.CloseWriter: the peer reads io.EOF once it has
// read everything written; reads here go on.
func (s *stream) CloseWrite() error {
	if s.IsClosed() {
		return net.ErrClosed
	}
	return mapErr(s.st.Close())
}

// Close implements net.Conn. It unblocks this stream's pending Read and
// Write, and the peer reads io.EOF. On a version 4 session, when the peer
// may still be writing (this side has not read its io.EOF), the peer is
// told to stop.
func (s *stream) Close() error {
	return s.CloseOnce(func() {
		s.st.Close()
		s.st.SetDeadline(time.Unix(1, 0))
		abort := false
		if s.m.aborting() {
			s.m.streams.remove(s)
			abort = !s.eof.Load() && !s.aborted.Load()
		}
		go s.discard(abort)
		s.wake(nil)
	})
}

// discard sends the abort if asked, then reads and drops what the peer
// still sends after Close, until it closes its side, the session ends or
// the drain time is up.
func (s *stream) discard(abort bool) {
	if abort {
		if err := sendAbort(s.m.ctrl, s.st.StreamID()); err != nil {
			s.m.log.Debug("sending a stream abort", "stream", s.st.StreamID(), "err", err)
		}
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.st.SetReadDeadline(time.Now().Add(s.m.drain))
	for {
		// Wait for bytes without a buffer (a zero-length yamux Read
		// takes none), so that a stream waiting for the peer's end
		// holds no buffer, only its goroutine.
		if _, err := s.st.Read(nil); err != nil {
			return
		}
		bp := drainBufs.Get().(*[]byte)
		_, err := s.st.Read(*bp)
		drainBufs.Put(bp)
		if err != nil {
			return
		}
	}
}

// drainBufs are the buffers closed streams read into what they drop.
var drainBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// abort is the peer's abort of this stream: it reads no more, so writes
// here fail with ErrAborted and this side's FIN ends the peer's drain.
// Reads go on: what the peer wrote before it closed, then io.EOF.
func (s *stream) abort() {
	if s.aborted.CompareAndSwap(false, true) {
		s.st.Close()
	}
}

// LocalAddr implements net.Conn.
func (s *stream) LocalAddr() net.Addr { return s.st.LocalAddr() }

// RemoteAddr implements net.Conn.
func (s *stream) RemoteAddr() net.Addr { return s.st.RemoteAddr() }

func mapErr(err error) error {
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.Is(err, hyamux.ErrTimeout):
		return os.ErrDeadlineExceeded
	case errors.Is(err, hyamux.ErrStreamClosed):
		return fmt.Errorf("%s: write after CloseWrite: %w", Name, net.ErrClosed)
	}
	return fmt.Errorf("%s: %w", Name, err)
}
