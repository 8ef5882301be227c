package muxkit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
)

// EndpointConfig configures [NewEndpoint].
type EndpointConfig struct {
	// Name prefixes the errors the endpoint makes itself, as in
	// "yamux: closing the listener: ..."; empty means "muxkit".
	Name string
	// Logger receives the endpoint's logs; nil discards them.
	Logger *slog.Logger
	// Addr is what [Endpoint.Addr] returns; nil is allowed.
	Addr net.Addr
	// MaxLinks bounds the links held at once; zero means no limit.
	MaxLinks int
	// CloseListener stops the transport's listener; [Endpoint.Close]
	// calls it once. Nil means there is nothing to stop.
	CloseListener func() error
}

// link is a Conn held by an endpoint.
type link struct {
	mc       Conn
	version  byte // the agent's hello version; from Version3 on, Open writes an origin header
	streams  int  // handed out and not closed; guarded by Endpoint.mu
	draining bool // close once streams reaches 0; guarded by Endpoint.mu
}

type accepted struct {
	l *link
	s Stream
}

// Endpoint is the connector half of a multiplexing transport: the links
// agents brought and the streams over them. It implements [sdk.Endpoint]
// and [sdk.StatsReporter]; its methods are safe for concurrent use.
//
// The transport runs its accept loop with [Serve] (under [Endpoint.Go]),
// takes a pending-handshake place for each new connection with
// [Endpoint.Enter], authenticates it, counts a failure with
// [Endpoint.Failed], and for each one that passes calls
// [Endpoint.Reserve] then [Endpoint.Add] (or [Endpoint.Unreserve] if it
// gives up in between). It also implements [sdk.Stopper].
type Endpoint struct {
	name          string
	log           *slog.Logger
	addr          net.Addr
	maxLinks      int
	closeListener func() error
	ctx           context.Context // cancelled by Close
	cancel        context.CancelFunc
	acceptCh      chan accepted
	wg            sync.WaitGroup
	streams       atomic.Int64
	gate          *admission.Gate
	// noOrigin is set once the endpoint logged that an origin could not
	// reach an agent of a release before Version3.
	noOrigin atomic.Bool

	mu       sync.Mutex
	links    map[*link]struct{}
	ring     []*link
	next     int
	pending  int           // links admitted but not yet added
	changed  chan struct{} // closed and replaced when links change
	closed   bool
	closeErr error
}

// NewEndpoint returns an endpoint with no links. The caller closes it.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	ctx, cancel := context.WithCancel(context.Background())
	name := cfg.Name
	if name == "" {
		name = "muxkit"
	}
	closeListener := cfg.CloseListener
	if closeListener == nil {
		closeListener = func() error { return nil }
	}
	log := sdk.Logger(cfg.Logger)
	return &Endpoint{
		name:          name,
		log:           log,
		addr:          cfg.Addr,
		maxLinks:      cfg.MaxLinks,
		closeListener: closeListener,
		ctx:           ctx,
		cancel:        cancel,
		acceptCh:      make(chan accepted),
		links:         make(map[*link]struct{}),
		changed:       make(chan struct{}),
		gate:          admission.NewGate(log, cfg.MaxLinks),
	}
}

// Context returns a context that [Endpoint.Close] cancels; accept loops
// and handshakes should end with it.
func (ep *Endpoint) Context() context.Context { return ep.ctx }

// Go runs f in a goroutine that [Endpoint.Close] waits for. Call it
// before the endpoint is handed out, or from a function already running
// under Go (an accept loop starting a handshake).
func (ep *Endpoint) Go(f func()) { ep.wg.Go(f) }

// Reserve admits one more link, or returns [sdk.ErrLinkLimit] or
// [sdk.ErrClosed]. A successful Reserve is followed by [Endpoint.Add] or
// [Endpoint.Unreserve].
//
// At the limit, idle links whose peer no longer answers [Conn.Probe]
// within two seconds are closed first, so that an agent that lost its old
// connection (a crash, an address change) is let back in at once instead
// of after the heartbeat threshold. Reserve blocks for that long at most.
func (ep *Endpoint) Reserve() error {
	err := ep.tryReserve()
	if err != sdk.ErrLinkLimit {
		return err
	}
	if ep.reclaim() == 0 {
		return err
	}
	return ep.tryReserve()
}

func (ep *Endpoint) tryReserve() error {
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
func (ep *Endpoint) reclaim() int {
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
		wg.Go(func() {
			if err := l.mc.Probe(ctx); err != nil {
				dead <- l
			}
		})
	}
	wg.Wait()
	close(dead)
	n := 0
	for l := range dead {
		ep.log.Info("closing an idle agent session that stopped answering, to admit a new one")
		l.mc.Close()
		ep.remove(l)
		n++
	}
	return n
}

// Unreserve gives back a successful [Endpoint.Reserve] that will not be
// followed by [Endpoint.Add].
func (ep *Endpoint) Unreserve() {
	ep.mu.Lock()
	ep.pending--
	ep.mu.Unlock()
}

// Add starts serving mc, for which [Endpoint.Reserve] succeeded: its
// streams are handed out by [Endpoint.Open] and [Endpoint.Accept] until it
// ends. The endpoint owns mc from here on; if the endpoint is closed
// already, Add closes mc. The streams Open returns carry no origin header:
// use [Endpoint.AddHello] for a link whose agent's hello is known.
func (ep *Endpoint) Add(mc Conn) { ep.AddHello(mc, Hello{Version: Version1}) }

// AddHello is [Endpoint.Add] for a link whose agent sent hello h: from
// [Version3] on, every stream [Endpoint.Open] opens on it starts with the
// origin header (see [AppendOriginHeader]), which the agent's
// [Session.Accept] reads.
func (ep *Endpoint) AddHello(mc Conn, h Hello) {
	l := &link{mc: mc, version: h.Version}
	ep.mu.Lock()
	ep.pending--
	if ep.closed {
		ep.mu.Unlock()
		mc.Close()
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
func (ep *Endpoint) changedLocked() {
	ep.ring = ep.ring[:0]
	for l := range ep.links {
		ep.ring = append(ep.ring, l)
	}
	close(ep.changed)
	ep.changed = make(chan struct{})
}

func (ep *Endpoint) remove(l *link) {
	ep.mu.Lock()
	if _, ok := ep.links[l]; ok {
		delete(ep.links, l)
		ep.changedLocked()
	}
	n := len(ep.links)
	ep.mu.Unlock()
	ep.log.Debug("agent session down", "links", n)
}

func (ep *Endpoint) watch(l *link) {
	defer ep.wg.Done()
	select {
	case <-l.mc.Done():
		ep.remove(l)
	case <-ep.ctx.Done():
	}
}

func (ep *Endpoint) acceptLoop(l *link) {
	defer ep.wg.Done()
	for {
		s, err := l.mc.AcceptStream(ep.ctx)
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
func (ep *Endpoint) pickLocked() *link {
	for range len(ep.ring) {
		l := ep.ring[ep.next%len(ep.ring)]
		ep.next++
		select {
		case <-l.mc.Done():
			continue
		default:
		}
		if l.mc.GoneAway() {
			continue
		}
		return l
	}
	return nil
}

// hand records s as handed out on l; false if the endpoint is closed.
func (ep *Endpoint) hand(l *link, s Stream) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return false
	}
	l.streams++
	ep.streams.Add(1)
	s.OnClose(func() { ep.release(l) })
	return true
}

func (ep *Endpoint) release(l *link) {
	ep.mu.Lock()
	l.streams--
	ep.streams.Add(-1)
	closeNow := l.draining && l.streams == 0
	ep.mu.Unlock()
	if closeNow {
		l.mc.Close()
	}
}

// Open implements [sdk.Endpoint.Open]: a new stream on one of the live
// links, spread round robin. It waits for a link while there is none,
// returns ctx.Err() when ctx ends and [sdk.ErrClosed] once the endpoint is
// closed. A link that fails to open a stream is dropped and the next one
// tried.
func (ep *Endpoint) Open(ctx context.Context) (net.Conn, error) {
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
		s, err := l.mc.OpenStream(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if l.mc.GoneAway() { // the agent is leaving; its streams go on
				continue
			}
			ep.log.Debug("opening a stream failed; dropping the session", "err", err)
			l.mc.Close()
			ep.remove(l)
			continue
		}
		if err := ep.writeOrigin(ctx, l, s); err != nil {
			s.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ep.log.Debug("writing a stream's origin header failed; dropping the session", "err", err)
			l.mc.Close()
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

// writeOrigin writes the origin header of a stream Open opened on l, when
// l's agent reads one, within [HeaderTimeout] and ctx; when it does not and ctx
// carries an origin, it logs once that the agent's local service gets no
// PROXY protocol header.
func (ep *Endpoint) writeOrigin(ctx context.Context, l *link, s Stream) error {
	o, ok := sdk.OriginFrom(ctx)
	if l.version < Version3 {
		if ok && !ep.noOrigin.Swap(true) {
			ep.log.Info("the mapping has a PROXY protocol version, but a client was relayed over the session of an agent of an older release, which cannot take the client's address: its local service gets no PROXY header (logged once per mapping)",
				"proxyprotocol", o.Proxy.String())
		}
		return nil
	}
	s.SetWriteDeadline(time.Now().Add(HeaderTimeout))
	stop := context.AfterFunc(ctx, func() { s.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := s.Write(AppendOriginHeader(make([]byte, 0, 1+sdk.MaxOriginLen), o, ok))
	if !stop() {
		// ctx ended: its deadline may land on the stream any time now.
		return ctx.Err()
	}
	s.SetWriteDeadline(time.Time{})
	return err
}

// Accept implements [sdk.Endpoint.Accept]: the next stream an agent
// opened, on any link. It returns ctx.Err() when ctx ends and
// [sdk.ErrClosed] once the endpoint is closed.
func (ep *Endpoint) Accept(ctx context.Context) (net.Conn, error) {
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

// Close implements [sdk.Endpoint.Close]. It stops the listener, unblocks
// pending Open and Accept calls and waits for the goroutines started with
// [Endpoint.Go]. Idle links close now; links carrying streams are told to
// open no more and close with their last stream. Later calls return what
// the first returned.
func (ep *Endpoint) Close() error {
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		ep.wg.Wait()
		ep.mu.Lock()
		defer ep.mu.Unlock()
		return ep.closeErr
	}
	ep.closed = true
	var idle []*link
	for l := range ep.links {
		if l.streams == 0 {
			idle = append(idle, l)
		} else {
			l.draining = true
			l.mc.GoAway()
		}
	}
	ep.links = map[*link]struct{}{}
	ep.changedLocked()
	ep.mu.Unlock()
	ep.cancel()
	ep.gate.Stop(nil)
	err := ep.closeListener()
	for _, l := range idle {
		l.mc.Close()
	}
	ep.wg.Wait()
	ep.gate.Close()
	if err != nil {
		err = fmt.Errorf("%s: closing the listener: %w", ep.name, err)
	}
	ep.mu.Lock()
	ep.closeErr = err
	ep.mu.Unlock()
	return err
}

// Addr returns [EndpointConfig.Addr]: for a transport, the address the
// endpoint listens on (useful when the configured port was 0).
func (ep *Endpoint) Addr() net.Addr { return ep.addr }

// Stats implements [sdk.StatsReporter]: the links held and the streams
// handed out and not yet closed.
func (ep *Endpoint) Stats() sdk.EndpointStats {
	ep.mu.Lock()
	n := len(ep.links)
	ep.mu.Unlock()
	return sdk.EndpointStats{Links: n, Streams: int(ep.streams.Load()), Failed: ep.gate.Failed(), FailedByReason: ep.gate.FailedByReason()}
}

var (
	_ sdk.Endpoint      = (*Endpoint)(nil)
	_ sdk.StatsReporter = (*Endpoint)(nil)
	_ sdk.Stopper       = (*Endpoint)(nil)
)
