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

// Sizes of a legacy link's read path.
const (
	// legacyReadSize is the most one socket read of a legacy link takes.
	legacyReadSize = 16 << 10
	// legacyBuffer caps the bytes a legacy link holds that no Read has
	// taken yet: data a private link's agent sent before its partner
	// arrived, or data a slow consumer has not read. Past it the reader
	// stops reading and TCP pushes back on the agent.
	legacyBuffer = 64 << 10
	// hangupCheck is how often a link whose reader is paused on a full
	// buffer is checked for a peer that closed or reset.
	hangupCheck = 250 * time.Millisecond
)

// legacyConn is an authenticated legacy agent link. One reader goroutine
// reads it continuously, idle, waiting for a private partner, or relaying:
// a read that is only heartbeats ("BEAT", or several coalesced) is answered
// with "BEAT" in a write of its own and never forwarded; everything else
// is buffered (at most legacyBuffer bytes) for Read, so that bytes sent
// before a consumer arrives are kept and the socket is still read, which is
// how a closed, reset or silent peer is noticed at once. A link whose peer
// closed, reset or stayed silent longer than the heartbeat threshold is
// released there and then: its socket is closed and its place under
// MaxLinks freed; bytes already buffered stay readable, then Read returns
// why the link ended.
type legacyConn struct {
	conn  net.Conn // the agent's connection, TLS or not
	raw   net.Conn // the TCP socket under conn
	ep    *endpoint
	queue *queue

	wmu     sync.Mutex // serialises relay writes and heartbeat answers
	wclosed bool

	taken     atomic.Bool
	closeOnce sync.Once
	relOnce   sync.Once
	goneOnce  sync.Once
	done      chan struct{} // closed by Close
	gone      chan struct{} // closed once the peer is known gone, or on release

	mu       sync.Mutex
	store    []byte // legacyBuffer bytes once data arrived; buffered = store[r:w]
	r, w     int
	rerr     error         // why the reader stopped, once it has
	readable chan struct{} // closed and replaced when bytes arrive or rerr is set
	room     chan struct{} // closed and replaced when Read takes bytes

	dmu       sync.Mutex
	deadline  time.Time
	dlChanged chan struct{} // closed and replaced by SetReadDeadline
}

func newLegacyConn(c, raw net.Conn, ep *endpoint) *legacyConn {
	return &legacyConn{
		conn:      c,
		raw:       raw,
		ep:        ep,
		done:      make(chan struct{}),
		gone:      make(chan struct{}),
		readable:  make(chan struct{}),
		room:      make(chan struct{}),
		dlChanged: make(chan struct{}),
	}
}

func (l *legacyConn) take() bool {
	select {
	case <-l.gone:
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

// Gone returns a channel closed once the agent is known gone (it closed or
// reset the link, or stayed silent past the heartbeat threshold) or the
// link was closed. A private pipe drops a stream still waiting for its
// partner when this fires, rather than pair it with a dead agent. Bytes
// the agent sent before may still be readable.
func (l *legacyConn) Gone() <-chan struct{} { return l.gone }

// run is the reader goroutine.
func (l *legacyConn) run() {
	buf := make([]byte, legacyReadSize)
	for {
		if !l.waitRoom() {
			return
		}
		l.conn.SetReadDeadline(time.Now().Add(l.ep.threshold))
		n, err := l.conn.Read(buf)
		if n > 0 {
			if isBeats(buf[:n]) {
				l.answerBeat()
			} else {
				l.push(buf[:n])
			}
		}
		if err != nil {
			if os.IsTimeout(err) {
				err = fmt.Errorf("tcp: legacy link silent for %v: %w", l.ep.threshold, err)
				if l.ep.ctx.Err() == nil {
					l.ep.log.Info("legacy agent link missed its heartbeats; closing it", sdk.AttrPeer, l.conn.RemoteAddr().String())
				}
			}
			l.stop(err)
			return
		}
	}
}

// waitRoom waits until the buffer can take a full read. While it waits the
// socket is not read, so it checks the socket for a peer hang-up instead.
// It returns false once the link is released.
func (l *legacyConn) waitRoom() bool {
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		l.mu.Lock()
		if l.w-l.r <= legacyBuffer-legacyReadSize {
			l.mu.Unlock()
			return true
		}
		room := l.room
		l.mu.Unlock()
		if tick == nil {
			tick = time.NewTicker(hangupCheck)
		}
		select {
		case <-room:
		case <-l.done:
			return false
		case <-tick.C:
			if peerHungUp(l.raw) {
				// Buffered and unread bytes stay for a consumer that
				// drains the link; a link nobody took is released.
				l.markGone()
				if !l.taken.Load() {
					l.stop(io.EOF)
					return false
				}
			}
		}
	}
}

// push appends b to the buffer; waitRoom made room for it.
func (l *legacyConn) push(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil {
		l.store = make([]byte, legacyBuffer)
	}
	if l.w+len(b) > len(l.store) {
		l.w = copy(l.store, l.store[l.r:l.w])
		l.r = 0
	}
	l.w += copy(l.store[l.w:], b)
	wake(&l.readable)
}

// stop records why the reader ended and releases the link.
func (l *legacyConn) stop(err error) {
	l.mu.Lock()
	l.rerr = err
	wake(&l.readable)
	l.mu.Unlock()
	l.release()
}

// wake closes *ch and replaces it, waking every waiter. The caller holds
// the lock guarding *ch.
func wake(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

func (l *legacyConn) answerBeat() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if !l.wclosed {
		l.conn.Write([]byte(legacyBeat))
	}
}

// Read returns the agent's bytes, heartbeats removed. Once the buffer is
// drained it returns why the link ended: io.EOF when the agent closed it.
func (l *legacyConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		select {
		case <-l.done:
			return 0, net.ErrClosed
		default:
		}
		l.mu.Lock()
		if l.w > l.r {
			n := copy(p, l.store[l.r:l.w])
			l.r += n
			if l.r == l.w {
				l.r, l.w = 0, 0
			}
			wake(&l.room)
			l.mu.Unlock()
			return n, nil
		}
		if err := l.rerr; err != nil {
			l.mu.Unlock()
			return 0, err
		}
		readable := l.readable
		l.mu.Unlock()

		l.dmu.Lock()
		dl, changed := l.deadline, l.dlChanged
		l.dmu.Unlock()
		var timer *time.Timer
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case <-readable:
		case <-changed:
		case <-l.done:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
	}
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
		l.release()
	})
	return err
}

// release closes the socket (not the TLS layer: the peer is gone or the
// link is being closed), frees the link's place under MaxLinks and takes it
// out of the queue and the stats. Bytes already buffered stay readable.
func (l *legacyConn) release() {
	l.relOnce.Do(func() {
		l.raw.Close()
		if l.queue != nil {
			l.queue.remove(l)
		}
		l.ep.mu.Lock()
		l.ep.links--
		delete(l.ep.legacy, l)
		l.ep.mu.Unlock()
		l.markGone()
	})
}

func (l *legacyConn) markGone() { l.goneOnce.Do(func() { close(l.gone) }) }

func (l *legacyConn) LocalAddr() net.Addr                { return l.conn.LocalAddr() }
func (l *legacyConn) RemoteAddr() net.Addr               { return l.conn.RemoteAddr() }
func (l *legacyConn) SetWriteDeadline(t time.Time) error { return l.conn.SetWriteDeadline(t) }

// SetReadDeadline bounds Read, including a Read already blocked; the
// reader goroutine keeps its own heartbeat deadline on the socket.
func (l *legacyConn) SetReadDeadline(t time.Time) error {
	l.dmu.Lock()
	l.deadline = t
	wake(&l.dlChanged)
	l.dmu.Unlock()
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
