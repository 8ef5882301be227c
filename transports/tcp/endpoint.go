package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
)

// endpoint is the connector half of one agent port.
type endpoint struct {
	cfg       sdk.EndpointConfig
	tcfg      *Config
	log       *slog.Logger
	ln        net.Listener
	threshold time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	idle     *queue          // links waiting for Open
	accepted *queue          // streams waiting for Accept
	gate     *admission.Gate // per-source handshake cap, failure tally, end of serve

	mu       sync.Mutex
	links    int                      // authenticated links open
	handed   map[net.Conn]*handedConn // bare streams handed out, by the value Open or Accept returned
	legacy   map[*legacyConn]struct{} // legacy links handed out and open
	insts    map[instanceID]*instance // our agents' instances (live.go)
	controls int                      // their control links open

	// warnedLegacy and warnedOld are set once the endpoint logged that a
	// client's origin could not reach a legacy agent or one of ours that
	// predates protocol version 3.
	warnedLegacy, warnedOld atomic.Bool
}

// noOrigin logs once per endpoint, for each kind of agent, that the
// origin Open was given cannot reach agent: its local service gets no
// PROXY protocol header.
func (ep *endpoint) noOrigin(ctx context.Context, warned *atomic.Bool, agent string) {
	o, ok := sdk.OriginFrom(ctx)
	if !ok || warned.Swap(true) {
		return
	}
	ep.log.Info("the mapping has a PROXY protocol version, but a client was relayed over a link of "+agent+
		", which cannot take the client's address: its local service gets no PROXY header (logged once per mapping)",
		"proxyprotocol", o.Proxy.String())
}

// handedConn is a bare stream handed out by Open or Accept. Its place is
// freed when the core reports it closed (StreamClosed) or when the endpoint
// closes it because its agent instance died. raw is the socket under it
// (closing it never blocks, unlike a TLS close); inst is the agent
// instance whose liveness it depends on, nil for protocol version 1.
type handedConn struct {
	c    net.Conn
	raw  net.Conn
	inst *instance
}

func newEndpoint(ln net.Listener, cfg sdk.EndpointConfig, tcfg *Config) *endpoint {
	ctx, cancel := context.WithCancel(context.Background())
	th := cfg.HeartbeatThreshold
	if th == 0 {
		th = sdk.DefaultHeartbeatThreshold
	}
	ep := &endpoint{
		cfg:       cfg,
		tcfg:      tcfg,
		log:       sdk.Logger(cfg.Logger),
		ln:        ln,
		threshold: th,
		ctx:       ctx,
		cancel:    cancel,
		idle:      newQueue(),
		accepted:  newQueue(),
		handed:    make(map[net.Conn]*handedConn),
		legacy:    make(map[*legacyConn]struct{}),
		insts:     make(map[instanceID]*instance),
	}
	ep.gate = admission.NewGate(ep.log, cfg.MaxLinks)
	ep.wg.Add(1)
	go ep.serve()
	return ep
}

// Addr returns the address the endpoint listens on.
func (ep *endpoint) Addr() net.Addr { return ep.ln.Addr() }

// serve accepts agent connections until Close. Transient accept errors
// (out of descriptors...) are retried with backoff; any other error stops
// the endpoint for good, reported by Done and Err.
func (ep *endpoint) serve() {
	defer ep.wg.Done()
	retry := admission.Retry{Logger: ep.log, What: "accepting agent connections"}
	for {
		conn, err := ep.ln.Accept()
		if err != nil {
			if ep.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if retry.Wait(ep.ctx, err) {
				continue
			}
			if ep.ctx.Err() == nil {
				ep.log.Error("accepting agent connections stopped", "err", err)
				ep.gate.Stop(fmt.Errorf("tcp: accepting agent connections on %s: %w", ep.ln.Addr(), err))
			}
			return
		}
		retry.Reset()
		leave, ok := ep.gate.Enter(conn.RemoteAddr())
		if !ok {
			conn.Close()
			continue
		}
		ep.wg.Add(1)
		go ep.admit(conn, leave)
	}
}

// reserve takes a place under MaxLinks.
func (ep *endpoint) reserve() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.cfg.MaxLinks > 0 && ep.links >= ep.cfg.MaxLinks {
		return false
	}
	ep.links++
	return true
}

// release gives a place back.
func (ep *endpoint) release() {
	ep.mu.Lock()
	ep.links--
	ep.mu.Unlock()
}

// admit authenticates one agent connection and queues its link. It runs
// the reader of an idle link of ours until the link is bound or dies.
// leave ends the connection's pending-handshake place.
func (ep *endpoint) admit(raw net.Conn, leave func()) {
	defer ep.wg.Done()
	defer leave()
	log := ep.log.With(sdk.AttrPeer, raw.RemoteAddr().String())
	tuneLiveness(raw, ep.threshold)
	stop := context.AfterFunc(ep.ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	raw.SetDeadline(time.Now().Add(ep.tcfg.HandshakeTimeout))
	c := raw
	if ep.cfg.TLS != nil {
		c = tls.Server(raw, ep.cfg.TLS)
	}
	// A hello's header is helloHeader bytes and a legacy agent's passcode
	// len(Passcode): read as much of both as cannot over-read either, in
	// one go when the passcode is that long (a Controller's are).
	var head [helloHeader]byte
	k := 1
	if len(ep.cfg.Passcode) >= helloHeader {
		k = helloHeader
	}
	if _, err := io.ReadFull(c, head[:k]); err != nil {
		stop()
		c.Close()
		log.Debug("agent sent nothing", "err", err)
		ep.failedHandshake(raw, admission.Reason(err))
		return
	}
	if head[0] != magicByte {
		ep.admitLegacy(c, raw, head[:k], stop, log)
		return
	}
	var (
		h   hello
		err error
	)
	if k == helloHeader {
		h, err = readHelloRest(c, [helloHeader - 1]byte(head[1:]), ep.cfg.Passcode)
	} else {
		h, err = readHello(c, ep.cfg.Passcode)
	}
	if err != nil {
		stop()
		c.Close()
		log.Debug("agent hello failed", "err", err)
		ep.failedHandshake(raw, admission.Reason(err))
		return
	}
	if h.version > ep.tcfg.maxVersion {
		h.answer = answerIncompatible
	}
	reserved := false
	if h.answer == answerOK {
		if h.role == roleControl {
			reserved = ep.reserveControl()
		} else {
			reserved = ep.reserve()
		}
		if !reserved {
			h.answer = answerLinkLimit
		}
	}
	_, err = c.Write(appendAnswer(nil, h, ep.threshold))
	if !stop() || err != nil || h.answer != answerOK {
		if reserved {
			ep.unreserve(h.role)
		}
		c.Close()
		log.Debug("agent refused or gone", "answer", h.answer, "err", err)
		ep.failedHandshake(raw, refusalReason(h.answer, err))
		return
	}
	leave()
	c.SetDeadline(time.Time{})
	switch h.role {
	case roleControl:
		ep.serveControl(c, h.instance, log)
		return
	case roleOpen:
		s := &openStream{ep: ep, conn: c, inst: h.instanceRef()}
		if !ep.accepted.push(s) {
			s.close()
		}
		return
	}
	l := &poolLink{ep: ep, conn: c, inst: h.instanceRef(), version: h.version, acked: make(chan struct{}), dead: make(chan struct{}), parked: make(chan struct{})}
	if l.noAck() {
		l.startBeats()
	}
	if !ep.idle.push(l) {
		l.stopBeats()
		l.conn.Close()
		ep.release()
		return
	}
	l.read()
}

// admitLegacy authenticates a legacy agent whose first bytes were head.
func (ep *endpoint) admitLegacy(c, raw net.Conn, head []byte, stop func() bool, log *slog.Logger) {
	ok, err := readLegacyPasscode(c, head, ep.cfg.Passcode)
	if err != nil || !ok {
		stop()
		c.Close()
		log.Debug("legacy agent refused: wrong passcode", "err", err)
		ep.failedHandshake(raw, legacyReason(err))
		return
	}
	if !ep.reserve() {
		stop()
		c.Close()
		log.Debug("legacy agent refused: link limit reached", "max_links", ep.cfg.MaxLinks)
		ep.failedHandshake(raw, admission.ReasonLinkLimit)
		return
	}
	_, err = io.WriteString(c, legacyAuthorized)
	if !stop() || err != nil {
		ep.release()
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	l := newLegacyConn(c, raw, ep)
	q := ep.idle
	if ep.cfg.Mode == sdk.ModePrivate {
		q = ep.accepted
	}
	l.queue = q
	if !q.push(l) {
		l.Close()
		return
	}
	go l.run()
}

// hand registers a bare stream handed to the caller, so that its place is
// freed when the core reports it closed ([endpoint.StreamClosed]), and,
// for a version 2 agent (inst not nil), so that it is closed if that agent
// instance dies or freezes.
func (ep *endpoint) hand(c net.Conn, inst *instanceID) {
	raw := c
	if t, isTLS := c.(*tls.Conn); isTLS {
		raw = t.NetConn()
	}
	h := &handedConn{c: c, raw: raw}
	ep.mu.Lock()
	ep.handed[c] = h
	if inst != nil {
		ep.trackLocked(h, *inst)
	}
	ep.mu.Unlock()
}

// StreamClosed implements [sdk.StreamObserver]: the core closed c, a
// stream Open or Accept returned, so its place under MaxLinks and in the
// stats is freed now. A stream the endpoint does not know (handed out by a
// predecessor endpoint, a legacy link, which frees its own place on Close,
// or one the endpoint already closed and freed because its agent died) is
// ignored. It never blocks on the network.
func (ep *endpoint) StreamClosed(c net.Conn) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	h, ok := ep.handed[c]
	if !ok {
		return
	}
	ep.untrackLocked(h)
}

// untrackLocked forgets the handed-out stream h and frees its place.
// ep.mu is held.
func (ep *endpoint) untrackLocked(h *handedConn) {
	delete(ep.handed, h.c)
	ep.links--
	if in := h.inst; in != nil {
		delete(in.streams, h)
		h.inst = nil
		if in.ctl == nil && len(in.streams) == 0 {
			// Nothing left to watch: the instance's control link never
			// came or is gone.
			ep.forgetLocked(in)
		}
	}
}

// Open implements [sdk.Endpoint.Open]: it binds an idle link.
func (ep *endpoint) Open(ctx context.Context) (net.Conn, error) {
	for {
		if ep.ctx.Err() != nil {
			return nil, fmt.Errorf("tcp: open: %w", sdk.ErrClosed)
		}
		it, err := ep.idle.pop(ctx)
		if err != nil {
			if errors.Is(err, sdk.ErrClosed) {
				return nil, fmt.Errorf("tcp: open: %w", err)
			}
			return nil, err
		}
		switch l := it.(type) {
		case *legacyConn:
			ep.noOrigin(ctx, &ep.warnedLegacy, "a legacy ioFog agent")
			return l, nil
		case *poolLink:
			c, err := l.bind(ctx)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				return nil, err
			}
			return c, nil
		}
	}
}

// Accept implements [sdk.Endpoint.Accept].
func (ep *endpoint) Accept(ctx context.Context) (net.Conn, error) {
	if ep.ctx.Err() != nil {
		return nil, fmt.Errorf("tcp: accept: %w", sdk.ErrClosed)
	}
	it, err := ep.accepted.pop(ctx)
	if err != nil {
		if errors.Is(err, sdk.ErrClosed) {
			return nil, fmt.Errorf("tcp: accept: %w", err)
		}
		return nil, err
	}
	switch s := it.(type) {
	case *legacyConn:
		return s, nil
	case *openStream:
		ep.hand(s.conn, s.inst)
		return s.conn, nil
	}
	return nil, fmt.Errorf("tcp: accept: unexpected %T", it)
}

// Close implements [sdk.Endpoint.Close].
func (ep *endpoint) Close() error {
	ep.once.Do(func() {
		ep.cancel()
		ep.gate.Stop(nil)
		ep.ln.Close()
		for _, it := range ep.idle.shut() {
			it.close()
		}
		for _, it := range ep.accepted.shut() {
			it.close()
		}
		ep.mu.Lock()
		for _, in := range ep.insts {
			in.timer.Stop()
		}
		ep.mu.Unlock()
	})
	ep.wg.Wait()
	ep.gate.Close()
	return nil
}

// Stats implements [sdk.StatsReporter].
func (ep *endpoint) Stats() sdk.EndpointStats {
	ep.mu.Lock()
	st := sdk.EndpointStats{Links: ep.links, Streams: len(ep.handed) + len(ep.legacy), Failed: ep.gate.Failed(), FailedByReason: ep.gate.FailedByReason()}
	ep.mu.Unlock()
	st.IdleLinks = ep.idle.len()
	return st
}

// openStream is a stream of ours in the "open" role waiting for Accept.
type openStream struct {
	ep   *endpoint
	conn net.Conn
	inst *instanceID // nil for protocol version 1
}

func (s *openStream) take() bool { return true }
func (s *openStream) close()     { s.conn.Close(); s.ep.release() }

var (
	_ sdk.Endpoint       = (*endpoint)(nil)
	_ sdk.StatsReporter  = (*endpoint)(nil)
	_ sdk.Stopper        = (*endpoint)(nil)
	_ sdk.StreamObserver = (*endpoint)(nil)
	_ item               = (*openStream)(nil)
)
