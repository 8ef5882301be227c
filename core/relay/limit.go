package relay

import (
	"context"
	"net"
	"sync"

	"github.com/iofog/iofog-connector/sdk"
)

// Limit counts the streams a relay holds on one side of a mapping (the
// results of that side's Open and Accept, from the moment the endpoint
// returns them until the relay closes them) and caps them at the side's
// maxconnections. The count is exact: it is taken and given back by the
// relay itself, never sampled from sockets. A Limit is safe for concurrent
// use; its zero value, and a nil *Limit, count without a cap.
type Limit struct {
	mu    sync.Mutex
	max   int           // zero: no cap
	held  int           // streams held now
	freed chan struct{} // closed and replaced when a place is given back
}

// NewLimit returns a limit of max streams at once; zero or less means no
// cap (streams are still counted).
func NewLimit(max int) *Limit {
	return &Limit{max: max}
}

// Max returns the cap, zero for none.
func (l *Limit) Max() int {
	if l == nil {
		return 0
	}
	return l.max
}

// Held returns the number of streams held now.
func (l *Limit) Held() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// tryAcquire takes a place if one is free.
func (l *Limit) tryAcquire() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.held >= l.max {
		return false
	}
	l.held++
	return true
}

// acquire takes a place, waiting for one until ctx is done (then it
// returns ctx.Err()).
func (l *Limit) acquire(ctx context.Context) error { return l.wait(ctx, true) }

// waitFree waits until a place is free without taking it.
func (l *Limit) waitFree(ctx context.Context) error { return l.wait(ctx, false) }

// wait waits until a place is free, taking it when grab is set, or until
// ctx is done (then it returns ctx.Err()).
func (l *Limit) wait(ctx context.Context, grab bool) error {
	for {
		ch, ok := l.take(grab)
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take reports whether a place is free, taking it when grab is set; when
// none is, it returns a channel closed once one is given back.
func (l *Limit) take(grab bool) (<-chan struct{}, bool) {
	if l == nil {
		return nil, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max <= 0 || l.held < l.max {
		if grab {
			l.held++
		}
		return nil, true
	}
	if l.freed == nil {
		l.freed = make(chan struct{})
	}
	return l.freed, false
}

// release gives a place back.
func (l *Limit) release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.held--
	if l.held < 0 {
		panic("relay: Limit released more often than acquired")
	}
	if l.freed != nil {
		close(l.freed)
		l.freed = nil
	}
	l.mu.Unlock()
}

// held is a stream the relay got from an endpoint's Open or Accept and
// counts against its side's [Limit] until it is done with it. The relay
// learns the end of a stream from its own close, never by watching the
// socket: Close (a stream closed before or instead of being relayed) and
// done (a relay ended: [pipe.JoinWith] closed the stream itself) each give
// the place back once, and tell the endpoint if it is an
// [sdk.StreamObserver].
//
// The pipe is handed the stream itself (Conn), not the wrapper, so that a
// bare *net.TCPConn keeps the kernel's splice and the transport's optional
// interfaces (half-close, readiness) stay visible.
type held struct {
	net.Conn // as the endpoint returned it
	ep       any
	limit    *Limit
	once     sync.Once
}

// hold wraps s, whose place under limit is already taken; ep is the
// endpoint that returned it.
func hold(s net.Conn, ep any, limit *Limit) *held {
	return &held{Conn: s, ep: ep, limit: limit}
}

// Close closes the stream and gives its place back.
func (h *held) Close() error {
	err := h.Conn.Close()
	h.done()
	return err
}

// done gives the place of a stream that is already closed back (once).
func (h *held) done() {
	h.once.Do(func() {
		h.limit.release()
		if o, ok := h.ep.(sdk.StreamObserver); ok {
			o.StreamClosed(h.Conn)
		}
	})
}

// NetConn returns the stream as the endpoint returned it.
func (h *held) NetConn() net.Conn { return h.Conn }
