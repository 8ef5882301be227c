package tcp

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// legacyConn is an authenticated legacy agent link. One reader goroutine
// reads it continuously, idle or relaying: a read that is only heartbeats
// ("BEAT", or several coalesced) is answered with "BEAT" in a write of its
// own and never forwarded; everything else is handed to Read. A link
// silent longer than the heartbeat threshold is closed.
type legacyConn struct {
	conn  net.Conn
	ep    *endpoint
	queue *queue

	wmu     sync.Mutex // serialises relay writes and heartbeat answers
	wclosed bool

	taken     atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed by Close
	data      chan []byte   // chunks from the reader
	used      chan struct{} // Read finished the current chunk
	rerr      error         // why the reader stopped; set before data closes

	pending  []byte
	deadline atomic.Pointer[time.Time]
}

func newLegacyConn(c net.Conn, ep *endpoint) *legacyConn {
	return &legacyConn{
		conn: c,
		ep:   ep,
		done: make(chan struct{}),
		data: make(chan []byte),
		used: make(chan struct{}),
	}
}

func (l *legacyConn) take() bool {
	select {
	case <-l.done:
		return false
	default:
	}
	if !l.taken.CompareAndSwap(false, true) {
		return false
	}
	l.ep.mu.Lock()
	l.ep.legacy[l] = struct{}{}
	l.ep.mu.Unlock()
	return true
}

func (l *legacyConn) close() { l.Close() }

// run is the reader goroutine.
func (l *legacyConn) run() {
	defer close(l.data)
	buf := make([]byte, 32<<10)
	for {
		l.conn.SetReadDeadline(time.Now().Add(l.ep.threshold))
		n, err := l.conn.Read(buf)
		if n > 0 {
			if isBeats(buf[:n]) {
				l.answerBeat()
			} else {
				select {
				case l.data <- buf[:n]:
				case <-l.done:
					l.rerr = net.ErrClosed
					return
				}
				select {
				case <-l.used:
				case <-l.done:
					l.rerr = net.ErrClosed
					return
				}
			}
		}
		if err != nil {
			if os.IsTimeout(err) {
				err = fmt.Errorf("tcp: legacy link silent for %v: %w", l.ep.threshold, err)
				l.ep.log.Info("legacy agent link missed its heartbeats; closing it", sdk.AttrPeer, l.conn.RemoteAddr().String())
			}
			l.rerr = err
			if !l.taken.Load() || err != io.EOF {
				l.Close()
			}
			return
		}
	}
}

func (l *legacyConn) answerBeat() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if !l.wclosed {
		l.conn.Write([]byte(legacyBeat))
	}
}

// Read returns the agent's bytes, heartbeats removed.
func (l *legacyConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(l.pending) == 0 {
		var timeout <-chan time.Time
		if d := l.deadline.Load(); d != nil && !d.IsZero() {
			t := time.NewTimer(time.Until(*d))
			defer t.Stop()
			timeout = t.C
		}
		select {
		case chunk, ok := <-l.data:
			if !ok {
				select {
				case <-l.done:
					return 0, net.ErrClosed
				default:
				}
				return 0, l.rerr
			}
			l.pending = chunk
		case <-l.done:
			return 0, net.ErrClosed
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	if len(l.pending) == 0 {
		select {
		case l.used <- struct{}{}:
		case <-l.done:
		}
	}
	return n, nil
}

// Write sends p to the agent.
func (l *legacyConn) Write(p []byte) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.conn.Write(p)
}

// CloseWrite half-closes the link when the underlying connection can.
func (l *legacyConn) CloseWrite() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.wclosed = true
	if cw, ok := l.conn.(sdk.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("tcp: %T cannot half-close", l.conn)
}

// Close closes the link and frees its place under MaxLinks.
func (l *legacyConn) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.conn.Close()
		if l.queue != nil {
			l.queue.remove(l)
		}
		l.ep.mu.Lock()
		l.ep.links--
		delete(l.ep.legacy, l)
		l.ep.mu.Unlock()
	})
	return err
}

func (l *legacyConn) LocalAddr() net.Addr                { return l.conn.LocalAddr() }
func (l *legacyConn) RemoteAddr() net.Addr               { return l.conn.RemoteAddr() }
func (l *legacyConn) SetWriteDeadline(t time.Time) error { return l.conn.SetWriteDeadline(t) }

// SetReadDeadline bounds Read; the reader goroutine keeps its own
// heartbeat deadline on the socket.
func (l *legacyConn) SetReadDeadline(t time.Time) error {
	l.deadline.Store(&t)
	return nil
}

func (l *legacyConn) SetDeadline(t time.Time) error {
	l.SetReadDeadline(t)
	return l.SetWriteDeadline(t)
}

var (
	_ net.Conn        = (*legacyConn)(nil)
	_ sdk.CloseWriter = (*legacyConn)(nil)
	_ item            = (*legacyConn)(nil)
)
