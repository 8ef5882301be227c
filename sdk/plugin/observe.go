package plugin

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Stream ends across the boundary ([sdk.StreamObserver]). The host's core
// tells the host-side endpoint when it is done with a stream it got from
// Open or Accept; the host sends that stream's ticket to the plugin on the
// Watch stream, and the plugin tells its endpoint, if that is an
// sdk.StreamObserver, with the very net.Conn the endpoint returned.
//
// The plugin keeps the contract itself where the host cannot speak: a
// stream that never reached the host (unclaimed, or dropped as it was
// handed over) is reported when the plugin closes it, and so is every
// stream once it ended when the host does not report closed streams (a
// host of an earlier release). A host that reports but whose word does
// not come within observeGrace after the plugin's side of the stream
// ended (its report was dropped, or the host is gone) is not waited for
// any longer.
const observeGrace = 30 * time.Second

// observed is the plugin side: the endpoint streams whose end the
// endpoint wants to learn, by ticket.
type observed struct {
	hostReports atomic.Bool // the host said it reports closed streams

	mu sync.Mutex
	m  map[ticket]*observedStream
}

type observedStream struct {
	ep    sdk.StreamObserver
	conn  net.Conn
	timer *time.Timer // the grace timer, once the stream ended in the plugin
}

// add records that the stream t is conn, from ep.
func (o *observed) add(t ticket, ep sdk.StreamObserver, conn net.Conn) {
	o.mu.Lock()
	if o.m == nil {
		o.m = map[ticket]*observedStream{}
	}
	o.m[t] = &observedStream{ep: ep, conn: conn}
	o.mu.Unlock()
}

// done tells the endpoint that the stream t closed, once; it ignores
// tickets it does not know (streams of endpoints that do not observe, or
// already told).
func (o *observed) done(t ticket) {
	o.mu.Lock()
	s := o.m[t]
	delete(o.m, t)
	o.mu.Unlock()
	if s == nil {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.ep.StreamClosed(s.conn)
}

// ended is the hub's word that the plugin closed the stream t: joined is
// false when it never reached the host. The endpoint is told now, unless
// the host will tell (it reports, and had the stream): then after
// observeGrace at the latest.
func (o *observed) ended(t ticket, joined bool) {
	if !joined || !o.hostReports.Load() {
		o.done(t)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if s := o.m[t]; s != nil && s.timer == nil {
		s.timer = time.AfterFunc(observeGrace, func() { o.done(t) })
	}
}

// len returns how many streams wait to be reported.
func (o *observed) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// Host side.

// maxClosedQueue bounds the tickets of closed streams waiting to be sent
// to the plugin; beyond it they are dropped (the plugin then tells its
// endpoint observeGrace later).
const maxClosedQueue = 1 << 16

// maxClosedBatch is how many tickets one HostBeat carries at most.
const maxClosedBatch = 1024

// handedStreams is the host side of one endpoint: the ticket of each
// stream it handed to the core, by the value it handed out, until the
// core says it is done with it.
type handedStreams struct {
	mu      sync.Mutex
	m       map[net.Conn]ticket
	pruneAt int
}

const minHandedPrune = 4096

func (h *handedStreams) add(c net.Conn, t ticket) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m, h.pruneAt = map[net.Conn]ticket{}, minHandedPrune
	}
	if len(h.m) >= h.pruneAt {
		// A caller that is not the core may never say: forget the
		// streams already closed (the plugin gives up waiting for them).
		for k := range h.m {
			if closed(unwrapConn(k)) {
				delete(h.m, k)
			}
		}
		h.pruneAt = max(minHandedPrune, 2*len(h.m))
	}
	h.m[c] = t
}

func (h *handedStreams) take(c net.Conn) (ticket, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.m[c]
	delete(h.m, c)
	return t, ok
}

// unwrapConn returns the unix connection under a stream the host handed
// out.
func unwrapConn(c net.Conn) net.Conn {
	if oc, ok := c.(*originConn); ok {
		return oc.Conn
	}
	return c
}
