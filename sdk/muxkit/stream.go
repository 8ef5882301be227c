package muxkit

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// StreamState is the bookkeeping every transport's [Stream] adapter
// needs, whatever its multiplexer: a Close that runs once and then calls
// the hook the [Endpoint] or [Session] set ([StreamState.OnClose]), reads
// and writes that fail with net.ErrClosed after it, and deadlines that
// apply even when data or window is available (a multiplexer's stream
// often checks its deadline only when it has to wait). Embed it in the
// adapter and [StreamState.Bind] the multiplexer's stream to it, which
// gives the adapter net.Conn's deadline methods. Its methods are safe for
// concurrent use, except OnClose (see [Stream]) and Bind.
type StreamState struct {
	closed  atomic.Bool
	once    sync.Once
	rd, wd  atomic.Int64 // deadlines, unix nanoseconds; 0 means none
	onClose func()       // set before the stream is handed out
	inner   Deadliner    // set by Bind before the stream is handed out
}

// Deadliner is the deadline half of a multiplexer's stream, which
// [StreamState.Bind] takes.
type Deadliner interface {
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Bind sets the multiplexer stream that [StreamState.SetDeadline],
// [StreamState.SetReadDeadline] and [StreamState.SetWriteDeadline] pass
// deadlines on to. Call it once, before the stream is handed out; those
// methods must not be called on an unbound StreamState.
func (s *StreamState) Bind(d Deadliner) { s.inner = d }

// SetDeadline implements net.Conn: both deadlines, as
// [StreamState.SetReadDeadline] and [StreamState.SetWriteDeadline] set them.
func (s *StreamState) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn: it records t (see
// [StreamState.CheckRead]) and passes it to the bound stream; after Close
// it returns net.ErrClosed.
func (s *StreamState) SetReadDeadline(t time.Time) error {
	return s.SetReadDeadlineWith(t, s.inner.SetReadDeadline)
}

// SetWriteDeadline is [StreamState.SetReadDeadline] for writes.
func (s *StreamState) SetWriteDeadline(t time.Time) error {
	return s.SetWriteDeadlineWith(t, s.inner.SetWriteDeadline)
}

// OnClose implements [Stream.OnClose].
func (s *StreamState) OnClose(f func()) { s.onClose = f }

// IsClosed reports whether [StreamState.CloseOnce] ran.
func (s *StreamState) IsClosed() bool { return s.closed.Load() }

// CheckRead returns what a Read must return before it reads: net.ErrClosed
// after Close, os.ErrDeadlineExceeded once the read deadline has passed,
// else nil.
func (s *StreamState) CheckRead() error { return s.check(&s.rd) }

// CheckWrite is [StreamState.CheckRead] for a Write.
func (s *StreamState) CheckWrite() error { return s.check(&s.wd) }

func (s *StreamState) check(d *atomic.Int64) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	if n := d.Load(); n != 0 && time.Now().UnixNano() >= n {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// SetReadDeadlineWith records t as the read deadline and passes it to set
// (the multiplexer stream's own SetReadDeadline); after Close it returns
// net.ErrClosed.
func (s *StreamState) SetReadDeadlineWith(t time.Time, set func(time.Time) error) error {
	return s.setDeadline(&s.rd, t, set)
}

// SetWriteDeadlineWith is [StreamState.SetReadDeadlineWith] for writes.
func (s *StreamState) SetWriteDeadlineWith(t time.Time, set func(time.Time) error) error {
	return s.setDeadline(&s.wd, t, set)
}

func (s *StreamState) setDeadline(d *atomic.Int64, t time.Time, set func(time.Time) error) error {
	if s.closed.Load() {
		return net.ErrClosed
	}
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	d.Store(n)
	return set(t)
}

// WaitReadWith is an adapter's WaitRead (the method sdk/pipe waits with,
// so that an idle stream holds no copy buffer): after
// [StreamState.CheckRead] it runs wait, the multiplexer's own wait for
// bytes to read that takes none, and returns net.ErrClosed if the stream
// was closed meanwhile, nil when wait returned nil or io.EOF (Read then
// returns the bytes or the end of the stream), else mapErr(err).
func (s *StreamState) WaitReadWith(wait func() error, mapErr func(error) error) error {
	if err := s.CheckRead(); err != nil {
		return err
	}
	err := wait()
	switch {
	case s.closed.Load():
		return net.ErrClosed
	case err == nil, err == io.EOF:
		return nil
	}
	return mapErr(err)
}

// CloseOnce is the adapter's Close: the first call marks the stream
// closed, runs f (which ends the multiplexer's stream) and then the
// OnClose hook, and returns nil; later calls return net.ErrClosed.
func (s *StreamState) CloseOnce(f func()) error {
	first := false
	s.once.Do(func() {
		first = true
		s.closed.Store(true)
		f()
		if s.onClose != nil {
			s.onClose()
		}
	})
	if !first {
		return net.ErrClosed
	}
	return nil
}
