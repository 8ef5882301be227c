package quic

// This file is the endpoint and session bookkeeping shared in spirit with
// transports/yamux (transports never import each other, so each keeps its
// copy): authenticated multiplexed connections ("links"), streams handed
// out on them, and the close rules of the sdk contract.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// muxConn is one authenticated multiplexed connection, as the endpoint and
// session need it.
type muxConn interface {
	openStream(ctx context.Context) (*stream, error)
	acceptStream(ctx context.Context) (*stream, error)
	// goAway tells the peer to open no more streams; streams open go on.
	goAway()
	// goneAway reports whether the peer said it takes no more streams.
	goneAway() bool
	// probe checks that the peer still answers, within ctx; nil when it
	// does or when the transport cannot tell.
	probe(ctx context.Context) error
	close() error
	done() <-chan struct{}
}

// link is a muxConn held by an endpoint.
type link struct {
	mc       muxConn
	streams  int  // handed out and not closed; guarded by endpoint.mu
	draining bool // close once streams reaches 0; guarded by endpoint.mu
}

type accepted struct {
	l *link
	s *stream
}

// endpoint is the connector half: links from agents, streams over them.
type endpoint struct {
	log           *slog.Logger
	addr          net.Addr
	maxLinks      int
	closeListener func() error
	ctx           context.Context // cancelled by Close
	cancel        context.CancelFunc
	acceptCh      chan accepted
	wg            sync.WaitGroup
	streams       atomic.Int64

	mu       sync.Mutex
	links    map[*link]struct{}
	ring     []*link
	next     int
	pending  int           // links admitted but not yet added
	changed  chan struct{} // closed and replaced when links change
	closed   bool
	closeErr error
}

func newEndpoint(log *slog.Logger, addr net.Addr, maxLinks int, closeListener func() error) *endpoint {
	ctx, cancel := context.WithCancel(context.Background())
	return &endpoint{
		log:           log,
		addr:          addr,
		maxLinks:      maxLinks,
		closeListener: closeListener,
		ctx:           ctx,
		cancel:        cancel,
		acceptCh:      make(chan accepted),
		links:         make(map[*link]struct{}),
		changed:       make(chan struct{}),
	}
}

// reserve admits one more link, or returns sdk.ErrLinkLimit or
// sdk.ErrClosed. A successful reserve is followed by add or unreserve.
//
// At the limit, idle links whose peer no longer answers a probe are
// closed first, so that an agent that lost its old connection (a crash,
// an address change) is let back in at once instead of after the
// heartbeat threshold.
func (ep *endpoint) reserve() error {
	err := ep.tryReserve()
	if err != sdk.ErrLinkLimit {
		return err
	}
	if ep.reclaim() == 0 {
		return err
	}
	return ep.tryReserve()
}

func (ep *endpoint) tryReserve() error {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return sdk.ErrClosed
	}
	if ep.maxLinks > 0 && len(ep.links)+ep.pending >= ep.maxLinks {
		return sdk.ErrLinkLimit
	}
	ep.pending++
	return nil
}

// reclaimProbe is how long an idle link has to answer when the endpoint is
// full and another agent knocks.
const reclaimProbe = 2 * time.Second

// reclaim probes the idle links at once and closes those that do not
// answer within reclaimProbe; it returns how many it closed.
func (ep *endpoint) reclaim() int {
	ep.mu.Lock()
	var idle []*link
	for l := range ep.links {
		if l.streams == 0 {
			idle = append(idle, l)
		}
	}
	ep.mu.Unlock()
	ctx, cancel := context.WithTimeout(ep.ctx, reclaimProbe)
	defer cancel()
	dead := make(chan *link, len(idle))
	var wg sync.WaitGroup
	for _, l := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.mc.probe(ctx); err != nil {
				dead <- l
			}
		}()
	}
	wg.Wait()
	close(dead)
	n := 0
	for l := range dead {
		ep.log.Info("closing an idle agent session that stopped answering, to admit a new one")
		l.mc.close()
		ep.remove(l)
		n++
	}
	return n
}

func (ep *endpoint) unreserve() {
	ep.mu.Lock()
	ep.pending--
	ep.mu.Unlock()
}

// add starts serving a reserved link.
func (ep *endpoint) add(mc muxConn) {
	l := &link{mc: mc}
	ep.mu.Lock()
	ep.pending--
	if ep.closed {
		ep.mu.Unlock()
		mc.close()
		return
	}
	ep.links[l] = struct{}{}
	ep.changedLocked()
	n := len(ep.links)
	ep.wg.Add(2)
	ep.mu.Unlock()
	ep.log.Debug("agent session up", "links", n)
	go ep.watch(l)
	go ep.acceptLoop(l)
}

// changedLocked rebuilds the ring and wakes Open calls waiting for a link.
func (ep *endpoint) changedLocked() {
	ep.ring = ep.ring[:0]
	for l := range ep.links {
		ep.ring = append(ep.ring, l)
	}
	close(ep.changed)
	ep.changed = make(chan struct{})
}

func (ep *endpoint) remove(l *link) {
	ep.mu.Lock()
	if _, ok := ep.links[l]; ok {
		delete(ep.links, l)
		ep.changedLocked()
	}
	n := len(ep.links)
	ep.mu.Unlock()
	ep.log.Debug("agent session down", "links", n)
}

func (ep *endpoint) watch(l *link) {
	defer ep.wg.Done()
	select {
	case <-l.mc.done():
		ep.remove(l)
	case <-ep.ctx.Done():
	}
}

func (ep *endpoint) acceptLoop(l *link) {
	defer ep.wg.Done()
	for {
		s, err := l.mc.acceptStream(ep.ctx)
		if err != nil {
			return
		}
		select {
		case ep.acceptCh <- accepted{l, s}:
		case <-ep.ctx.Done():
			s.Close()
			return
		}
	}
}

// pickLocked returns the next live link, round robin, or nil.
func (ep *endpoint) pickLocked() *link {
	for range len(ep.ring) {
		l := ep.ring[ep.next%len(ep.ring)]
		ep.next++
		select {
		case <-l.mc.done():
			continue
		default:
		}
		if l.mc.goneAway() {
			continue
		}
		return l
	}
	return nil
}

// hand records s as handed out on l; false if the endpoint is closed.
func (ep *endpoint) hand(l *link, s *stream) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return false
	}
	l.streams++
	ep.streams.Add(1)
	s.onClose = func() { ep.release(l) }
	return true
}

func (ep *endpoint) release(l *link) {
	ep.mu.Lock()
	l.streams--
	ep.streams.Add(-1)
	closeNow := l.draining && l.streams == 0
	ep.mu.Unlock()
	if closeNow {
		l.mc.close()
	}
}

// Open implements [sdk.Endpoint.Open]: a new stream on one of the live
// links, spread round robin.
func (ep *endpoint) Open(ctx context.Context) (net.Conn, error) {
	for {
		ep.mu.Lock()
		if ep.closed {
			ep.mu.Unlock()
			return nil, sdk.ErrClosed
		}
		l := ep.pickLocked()
		changed := ep.changed
		ep.mu.Unlock()
		if l == nil {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-ep.ctx.Done():
				return nil, sdk.ErrClosed
			}
		}
		s, err := l.mc.openStream(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if l.mc.goneAway() { // the agent is leaving; its streams go on
				continue
			}
			ep.log.Debug("opening a stream failed; dropping the session", "err", err)
			l.mc.close()
			ep.remove(l)
			continue
		}
		if !ep.hand(l, s) {
			s.Close()
			return nil, sdk.ErrClosed
		}
		return s, nil
	}
}

// Accept implements [sdk.Endpoint.Accept]: the next stream an agent opened.
func (ep *endpoint) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case a := <-ep.acceptCh:
		if !ep.hand(a.l, a.s) {
			a.s.Close()
			return nil, sdk.ErrClosed
		}
		return a.s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-ep.ctx.Done():
		return nil, sdk.ErrClosed
	}
}

// Close implements [sdk.Endpoint.Close]. Idle links close now; links
// carrying streams are told to open no more and close with their last
// stream.
func (ep *endpoint) Close() error {
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		ep.wg.Wait()
		return ep.closeErr
	}
	ep.closed = true
	var idle []*link
	for l := range ep.links {
		if l.streams == 0 {
			idle = append(idle, l)
		} else {
			l.draining = true
			l.mc.goAway()
		}
	}
	ep.links = map[*link]struct{}{}
	ep.changedLocked()
	ep.mu.Unlock()
	ep.cancel()
	err := ep.closeListener()
	for _, l := range idle {
		l.mc.close()
	}
	ep.wg.Wait()
	if err != nil {
		err = fmt.Errorf("%s: closing the listener: %w", Name, err)
	}
	ep.mu.Lock()
	ep.closeErr = err
	ep.mu.Unlock()
	return err
}

// Addr returns the address the endpoint listens on (useful when
// EndpointConfig.Addr had port 0).
func (ep *endpoint) Addr() net.Addr { return ep.addr }

// Stats implements [sdk.StatsReporter].
func (ep *endpoint) Stats() sdk.EndpointStats {
	ep.mu.Lock()
	n := len(ep.links)
	ep.mu.Unlock()
	return sdk.EndpointStats{Links: n, Streams: int(ep.streams.Load())}
}

// session is the agent half: one link to an endpoint.
type session struct {
	mc     muxConn
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu      sync.Mutex
	streams int
	closed  bool
}

func newSession(mc muxConn) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{mc: mc, ctx: ctx, cancel: cancel}
}

// Accept implements [sdk.Session.Accept].
func (s *session) Accept(ctx context.Context) (net.Conn, error) {
	return s.get(ctx, "accept", s.mc.acceptStream)
}

// Open implements [sdk.Session.Open].
func (s *session) Open(ctx context.Context) (net.Conn, error) {
	return s.get(ctx, "open", s.mc.openStream)
}

func (s *session) get(ctx context.Context, op string, f func(context.Context) (*stream, error)) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	st, err := f(cctx)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case s.ctx.Err() != nil:
			return nil, sdk.ErrClosed
		}
		if s.mc.goneAway() {
			// The connector takes no more streams on this session: it is
			// as good as closed, and the agent should redial.
			return nil, fmt.Errorf("%s: session %s: %w: %w", Name, op, err, net.ErrClosed)
		}
		// When the connection is gone for good (its end may be noticed a
		// moment after the call fails), say so in a way callers can test,
		// errors.Is(err, net.ErrClosed), so they redial at once.
		wait := time.NewTimer(time.Second)
		defer wait.Stop()
		select {
		case <-s.mc.done():
			return nil, fmt.Errorf("%s: session %s: connection ended: %w: %w", Name, op, err, net.ErrClosed)
		case <-wait.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: session %s: %w", Name, op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.Close()
		return nil, sdk.ErrClosed
	}
	s.streams++
	st.onClose = s.release
	s.mu.Unlock()
	return st, nil
}

func (s *session) release() {
	s.mu.Lock()
	s.streams--
	closeNow := s.closed && s.streams == 0
	s.mu.Unlock()
	if closeNow {
		s.mc.close()
	}
}

// Close implements [sdk.Session.Close]. With streams open, the connection
// stays up, refusing new streams, until the last one closes.
func (s *session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	n := s.streams
	s.mu.Unlock()
	s.cancel()
	if n == 0 {
		return s.mc.close()
	}
	s.mc.goAway()
	return nil
}

var (
	_ sdk.Endpoint      = (*endpoint)(nil)
	_ sdk.StatsReporter = (*endpoint)(nil)
	_ sdk.Session       = (*session)(nil)
)
