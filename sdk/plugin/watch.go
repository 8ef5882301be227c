package plugin

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// watcher is the host side of the Watch stream of one plugin process: it
// beats every hostBeatInterval, so that the plugin knows the host is not
// frozen, and closes the unix connection of every stream the plugin says
// ended abnormally, so that the relay using it sees an error (and closes
// its public client) instead of a mere EOF. When the stream breaks (the
// plugin process is gone) it closes every stream it knows.
type watcher struct {
	paused atomic.Bool // tests: stop beating, as a frozen host would

	mu        sync.Mutex
	streams   map[ticket]*watched // claimed or being claimed
	pruneAt   int
	untracked bool          // the plugin does not watch (older release), or is gone
	closedQ   []ticket      // endpoint streams the core is done with, to send
	kick      chan struct{} // a ticket was queued
}

// watched is one stream being claimed (conn nil) or claimed.
type watched struct {
	conn    net.Conn
	aborted bool // the plugin said so before the claim completed
}

// minPrune is the size of the stream table below which closed streams are
// not looked for.
const minPrune = 256

func newWatcher() *watcher {
	return &watcher{streams: map[ticket]*watched{}, pruneAt: minPrune, kick: make(chan struct{}, 1)}
}

// run keeps the Watch stream of c until it breaks.
func (w *watcher) run(c pb.TransportClient) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.Watch(ctx)
	if err != nil {
		w.stop(false)
		return
	}
	go func() {
		t := time.NewTicker(hostBeatInterval)
		defer t.Stop()
		for first := true; ; first = false {
			if !first {
				select {
				case <-t.C:
				case <-w.kick:
				case <-ctx.Done():
					return
				}
			}
			if w.paused.Load() {
				continue
			}
			for beat := true; beat; {
				closed := w.takeClosed()
				if stream.Send(&pb.HostBeat{Closed: closed, ReportsClosed: true}) != nil {
					return
				}
				beat = len(closed) == maxClosedBatch
			}
		}
	}()
	for {
		ev, err := stream.Recv()
		if err != nil {
			// An older plugin has no Watch: nothing to track. Any other
			// end means the plugin process (or its connection) is gone,
			// and the streams it carried with it.
			w.stop(status.Code(err) != codes.Unimplemented)
			return
		}
		if ev.Aborted && len(ev.Ticket) == ticketLen {
			w.abort(ticket(ev.Ticket))
		}
	}
}

// streamClosed queues t, an endpoint stream the core is done with, for
// the plugin. It never blocks.
func (w *watcher) streamClosed(t ticket) {
	w.mu.Lock()
	if w.untracked || len(w.closedQ) >= maxClosedQueue {
		w.mu.Unlock()
		return
	}
	w.closedQ = append(w.closedQ, t)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// takeClosed returns up to maxClosedBatch queued tickets.
func (w *watcher) takeClosed() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.closedQ), maxClosedBatch)
	if n == 0 {
		return nil
	}
	out := make([][]byte, n)
	for i := range n {
		t := w.closedQ[i]
		out[i] = t[:]
	}
	w.closedQ = w.closedQ[n:]
	if len(w.closedQ) == 0 {
		w.closedQ = nil
	}
	return out
}

// reports says whether the plugin is watched, so that closed streams
// reach it.
func (w *watcher) reports() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.untracked
}

// stop ends tracking; with closeAll, every stream known is closed.
func (w *watcher) stop(closeAll bool) {
	w.mu.Lock()
	streams := w.streams
	w.streams = map[ticket]*watched{}
	w.untracked = true
	w.closedQ = nil
	w.mu.Unlock()
	if !closeAll {
		return
	}
	for _, s := range streams {
		if s.conn != nil {
			s.conn.Close()
		}
	}
}

func (w *watcher) abort(t ticket) {
	w.mu.Lock()
	s := w.streams[t]
	if s == nil {
		w.mu.Unlock()
		return
	}
	if s.conn == nil {
		s.aborted = true
		w.mu.Unlock()
		return
	}
	delete(w.streams, t)
	w.mu.Unlock()
	s.conn.Close()
}

// expect records that the stream t is about to be claimed.
func (w *watcher) expect(t ticket) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.untracked {
		return
	}
	if len(w.streams) >= w.pruneAt {
		for k, s := range w.streams {
			if s.conn != nil && closed(s.conn) {
				delete(w.streams, k)
			}
		}
		w.pruneAt = max(minPrune, 2*len(w.streams))
	}
	w.streams[t] = &watched{}
}

// claimed records conn as the stream t, or returns false (and forgets t)
// when the plugin said t ended before the claim completed.
func (w *watcher) claimed(t ticket, conn net.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.streams[t]
	if s == nil {
		return true // untracked
	}
	if s.aborted {
		delete(w.streams, t)
		return false
	}
	s.conn = conn
	return true
}

// forget drops t, whose claim failed.
func (w *watcher) forget(t ticket) {
	w.mu.Lock()
	delete(w.streams, t)
	w.mu.Unlock()
}

// closed reports whether conn has been closed (by the relay that used it).
func closed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	return rc.Control(func(uintptr) {}) != nil
}
