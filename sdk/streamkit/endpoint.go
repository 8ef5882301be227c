package streamkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
)

// endpoint is the connector half of one agent port.
type endpoint struct {
	name  string
	fault string
	cfg   sdk.EndpointConfig
	log   *slog.Logger
	ln    net.Listener
	gate  *admission.Gate
	wg    sync.WaitGroup

	mu       sync.Mutex
	links    []*link // in admission order, for round robin
	byID     map[uint64]*link
	waiting  map[uint64]chan net.Conn // streams asked for, by stream id
	nextID   uint64
	rr       int
	changed  chan struct{} // closed and replaced when links change
	accepted chan net.Conn
	closed   chan struct{}
	once     sync.Once
}

// link is one agent session: its control connection and its streams.
type link struct {
	id      uint64
	origins bool // the agent reads 'Q'
	ctrl    net.Conn
	wmu     sync.Mutex
	dead    chan struct{}
	once    sync.Once
	streams streamSet

	imu        sync.Mutex
	idle       []*idleLink // idle links of this session, newest last
	idleClosed bool        // set by kill: no idle link is added after it
}

// idleLink is a carrier connection an agent dialled ahead, waiting to
// be bound to a stream. Its reader watches for the agent closing it.
type idleLink struct {
	c     net.Conn
	mu    sync.Mutex
	taken bool          // being bound: its reader must leave it open
	done  chan struct{} // closed when its reader returned
}

// addIdle holds il, unless the session ended.
func (l *link) addIdle(il *idleLink) bool {
	l.imu.Lock()
	defer l.imu.Unlock()
	if l.idleClosed {
		return false
	}
	l.idle = append(l.idle, il)
	return true
}

// removeIdle forgets il, if held.
func (l *link) removeIdle(il *idleLink) {
	l.imu.Lock()
	defer l.imu.Unlock()
	l.idle = slices.DeleteFunc(l.idle, func(x *idleLink) bool { return x == il })
}

// takeIdle returns the newest idle link, marked taken, or nil.
func (l *link) takeIdle() *idleLink {
	l.imu.Lock()
	defer l.imu.Unlock()
	if len(l.idle) == 0 {
		return nil
	}
	il := l.idle[len(l.idle)-1]
	l.idle = l.idle[:len(l.idle)-1]
	il.mu.Lock()
	il.taken = true
	il.mu.Unlock()
	return il
}

func (l *link) idleCount() int {
	l.imu.Lock()
	defer l.imu.Unlock()
	return len(l.idle)
}

func (l *link) send(b []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := l.ctrl.Write(b)
	return err
}

// kill ends the session; silent (its agent stopped beating) aborts its
// streams too, since that agent is gone with them.
func (l *link) kill(silent bool) {
	l.once.Do(func() {
		close(l.dead)
		l.ctrl.Close()
		l.imu.Lock()
		idle := l.idle
		l.idle, l.idleClosed = nil, true
		l.imu.Unlock()
		for _, il := range idle {
			il.c.Close()
		}
		if silent {
			l.streams.abort()
		}
	})
}

func newEndpoint(t *Transport, cfg sdk.EndpointConfig, ln net.Listener) *endpoint {
	if cfg.HeartbeatThreshold == 0 {
		cfg.HeartbeatThreshold = sdk.DefaultHeartbeatThreshold
	}
	log := sdk.Logger(cfg.Logger)
	e := &endpoint{
		name: t.cfg.Name, fault: t.fault, cfg: cfg, log: log, ln: ln,
		gate:     admission.NewGate(log, cfg.MaxLinks),
		byID:     map[uint64]*link{},
		waiting:  map[uint64]chan net.Conn{},
		changed:  make(chan struct{}),
		accepted: make(chan net.Conn, 256),
		closed:   make(chan struct{}),
	}
	e.wg.Add(1)
	go e.serve()
	return e
}

func (e *endpoint) isClosed() bool {
	select {
	case <-e.closed:
		return true
	default:
		return false
	}
}

// serve is the accept loop: it survives transient errors and reports any
// other through the gate (sdk.Stopper).
func (e *endpoint) serve() {
	defer e.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends a backoff wait when the endpoint closes
		select {
		case <-e.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	retry := admission.Retry{Logger: e.log, What: "accepting agent connections"}
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if e.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			if retry.Wait(ctx, err) {
				continue
			}
			if !e.isClosed() {
				e.gate.Stop(fmt.Errorf("%s: accepting agent connections: %w", e.name, err))
			}
			return
		}
		retry.Reset()
		leave, ok := e.gate.Enter(c.RemoteAddr())
		if !ok {
			c.Close()
			continue
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.handle(c, leave)
		}()
	}
}

// handle runs one agent connection's handshake and, for a control
// connection, its session.
func (e *endpoint) handle(c net.Conn, leave func()) {
	defer leave()
	fail := func(reason string, status ...byte) {
		if !e.isClosed() {
			e.gate.Fail(c.RemoteAddr(), reason)
		}
		if len(status) > 0 {
			c.Write(status)
		}
		c.Close()
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	h, err := readHeader(c)
	if err != nil {
		fail(admission.Reason(err))
		return
	}
	if !h.passOK(e.cfg.Passcode) && e.fault != "nopasscode" {
		fail(admission.ReasonBadPasscode, statusBadPass)
		return
	}
	switch h.kind {
	case kindControl, kindControlOrigins:
		l, ok := e.addLink(c, h.kind == kindControlOrigins)
		if !ok {
			if e.isClosed() {
				c.Close()
				return
			}
			fail(admission.ReasonLinkLimit, statusLimit)
			return
		}
		leave()
		reply := binary.BigEndian.AppendUint64([]byte{statusOK}, l.id)
		c.SetDeadline(time.Time{})
		if _, err := c.Write(reply); err != nil {
			l.kill(false)
		} else if e.fault != "nothreshold" && l.send(thresholdMsg(e.cfg.HeartbeatThreshold)) != nil {
			l.kill(false)
		}
		e.control(l)
	case kindData, kindOpen:
		e.mu.Lock()
		l := e.byID[h.session]
		var ch chan net.Conn
		if h.kind == kindData {
			ch = e.waiting[h.stream]
			delete(e.waiting, h.stream)
		}
		e.mu.Unlock()
		if l == nil || (h.kind == kindData && ch == nil) || e.isClosed() {
			c.Write([]byte{statusNoSuchID}) // late, or its session is gone: not a failed link
			c.Close()
			return
		}
		c.SetDeadline(time.Time{})
		if _, err := c.Write([]byte{statusOK}); err != nil {
			c.Close()
			return
		}
		st := l.streams.add(c)
		if h.kind == kindData {
			ch <- st // buffered
			return
		}
		select {
		case e.accepted <- st:
		default:
			st.Close() // nobody takes streams: refuse
		}
	case kindIdle:
		e.idleLink(c, leave)
	default:
		fail("unknown connection kind") // closed unanswered, as agents expect
	}
}

// idleLink admits an idle link: after the first answer the agent sends
// its session id, which must be live; the link is then held until a
// stream is bound to it, the agent closes it or its session ends.
func (e *endpoint) idleLink(c net.Conn, leave func()) {
	var id [8]byte
	if _, err := c.Write([]byte{statusOK}); err != nil {
		c.Close()
		return
	}
	if _, err := io.ReadFull(c, id[:]); err != nil {
		c.Close()
		return
	}
	e.mu.Lock()
	l := e.byID[binary.BigEndian.Uint64(id[:])]
	e.mu.Unlock()
	if l == nil || e.isClosed() {
		c.Write([]byte{statusNoSuchID})
		c.Close()
		return
	}
	if _, err := c.Write([]byte{statusOK}); err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	il := &idleLink{c: c, done: make(chan struct{})}
	if !l.addIdle(il) {
		c.Close()
		return
	}
	leave()
	_, err := c.Read(id[:1]) // the agent sends nothing on an idle link
	il.mu.Lock()
	taken := il.taken
	il.mu.Unlock()
	close(il.done)
	if !taken {
		l.removeIdle(il)
		c.Close()
		_ = err
	}
}

// addLink admits a session under the link limit.
func (e *endpoint) addLink(c net.Conn, origins bool) (*link, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.isClosed() {
		return nil, false
	}
	if e.cfg.MaxLinks > 0 && len(e.links) >= e.cfg.MaxLinks && e.fault != "nolimit" {
		return nil, false
	}
	e.nextID++
	l := &link{id: e.nextID, origins: origins, ctrl: c, dead: make(chan struct{})}
	e.links = append(e.links, l)
	e.byID[l.id] = l
	e.notifyLocked()
	e.log.Debug("agent session started", sdk.AttrPeer, c.RemoteAddr().String())
	return l, true
}

func (e *endpoint) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// control reads a session's control connection: it echoes beats and ends
// the session once the agent is silent for the threshold.
func (e *endpoint) control(l *link) {
	defer func() {
		e.mu.Lock()
		e.links = slices.DeleteFunc(e.links, func(x *link) bool { return x == l })
		delete(e.byID, l.id)
		e.notifyLocked()
		e.mu.Unlock()
	}()
	buf := make([]byte, 1)
	for {
		if e.fault != "noheartbeat" {
			l.ctrl.SetReadDeadline(time.Now().Add(e.cfg.HeartbeatThreshold))
		}
		if _, err := l.ctrl.Read(buf); err != nil {
			var ne net.Error
			silent := errors.As(err, &ne) && ne.Timeout()
			if silent {
				e.log.Info("agent silent for the heartbeat threshold; dropping its session and its streams",
					sdk.AttrPeer, l.ctrl.RemoteAddr().String(), "threshold", e.cfg.HeartbeatThreshold)
			}
			l.kill(silent)
			return
		}
		if buf[0] == 'B' && l.send([]byte{'B'}) != nil {
			l.kill(false)
			return
		}
	}
}

// pick returns the next live session, round robin, and the channel that
// closes when sessions change.
func (e *endpoint) pick() (*link, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.links) == 0 {
		return nil, e.changed
	}
	e.rr++
	return e.links[e.rr%len(e.links)], e.changed
}

// Open implements [sdk.Endpoint]: it asks a session's agent for a stream
// (with the origin ctx carries, to agents that read it) and waits for the
// agent's connection.
func (e *endpoint) Open(ctx context.Context) (net.Conn, error) {
	o, hasOrigin := sdk.OriginFrom(ctx)
	for {
		if e.isClosed() {
			return nil, sdk.ErrClosed
		}
		l, changed := e.pick()
		if l == nil {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-e.closed:
				return nil, sdk.ErrClosed
			case <-changed:
				continue
			}
		}
		c, err := e.request(ctx, l, o, hasOrigin && l.origins)
		if c != nil || err != nil {
			return c, err
		}
		// The session died before its agent answered: try another.
	}
}

// request asks l for one stream and waits for it: nil, nil when l died
// first.
func (e *endpoint) request(ctx context.Context, l *link, o sdk.Origin, withOrigin bool) (net.Conn, error) {
	for il := l.takeIdle(); il != nil; il = l.takeIdle() {
		if c := bind(ctx, l, il, o, withOrigin); c != nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	e.nextID++
	id := e.nextID
	ch := make(chan net.Conn, 1)
	e.waiting[id] = ch
	e.mu.Unlock()
	var err error
	if err = l.send(requestMsg(id, o, withOrigin)); err == nil {
		select {
		case c := <-ch:
			return c, nil
		case <-l.dead:
		case <-ctx.Done():
			err = ctx.Err()
		case <-e.closed:
			err = sdk.ErrClosed
		}
	} else {
		l.kill(false)
		err = nil
	}
	e.mu.Lock()
	delete(e.waiting, id)
	e.mu.Unlock()
	select {
	case c := <-ch: // arrived as we gave up
		if err == nil {
			return c, nil
		}
		c.Close()
	default:
	}
	return nil, err
}

// bindTimeout bounds a bind on an idle link, after which Open falls back
// to a request on the control connection.
const bindTimeout = 5 * time.Second

// bind makes the idle link il the stream: it writes the request on the
// link and waits for the agent's answer. It returns nil when the link
// is dead (the caller tries another way) or ctx ended.
func bind(ctx context.Context, l *link, il *idleLink, o sdk.Origin, withOrigin bool) net.Conn {
	c := il.c
	c.SetReadDeadline(time.Unix(1, 0)) // stop the link's reader
	<-il.done
	deadline := time.Now().Add(bindTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var ack [1]byte
	_, err := c.Write(requestMsg(0, o, withOrigin))
	if err == nil {
		_, err = io.ReadFull(c, ack[:])
	}
	if err != nil || ack[0] != statusOK || !stop() {
		c.Close()
		return nil
	}
	c.SetDeadline(time.Time{})
	return l.streams.add(c)
}

// Accept implements [sdk.Endpoint]: the next stream an agent opened.
func (e *endpoint) Accept(ctx context.Context) (net.Conn, error) {
	if e.isClosed() {
		return nil, sdk.ErrClosed
	}
	select {
	case c := <-e.accepted:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.closed:
		return nil, sdk.ErrClosed
	}
}

// Close implements [sdk.Endpoint].
func (e *endpoint) Close() error {
	e.once.Do(func() {
		e.mu.Lock()
		close(e.closed)
		links := slices.Clone(e.links)
		e.mu.Unlock()
		e.gate.Stop(nil)
		if e.fault == "leak" {
			return // leaves the listener and its goroutine behind
		}
		e.ln.Close()
		for _, l := range links {
			l.kill(false)
		}
	})
	if e.fault != "leak" {
		e.wg.Wait()
		e.gate.Close()
	}
	for {
		select {
		case c := <-e.accepted:
			c.Close()
		default:
			return nil
		}
	}
}

// Stats implements [sdk.StatsReporter]: sessions are links; streams are
// the carrier connections handed out (or waiting in Accept) and not yet
// closed.
func (e *endpoint) Stats() sdk.EndpointStats {
	e.mu.Lock()
	links := slices.Clone(e.links)
	e.mu.Unlock()
	st := sdk.EndpointStats{Links: len(links), Failed: e.gate.Failed(), FailedByReason: e.gate.FailedByReason()}
	for _, l := range links {
		st.Streams += l.streams.len()
		st.IdleLinks += l.idleCount()
	}
	return st
}

// Done implements [sdk.Stopper].
func (e *endpoint) Done() <-chan struct{} { return e.gate.Done() }

// Err implements [sdk.Stopper].
func (e *endpoint) Err() error { return e.gate.Err() }

var (
	_ sdk.Endpoint      = (*endpoint)(nil)
	_ sdk.StatsReporter = (*endpoint)(nil)
	_ sdk.Stopper       = (*endpoint)(nil)
)
