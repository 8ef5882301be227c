package tcp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Timings of our agents' heartbeats.
const (
	// minBeatInterval bounds below the beat interval an agent derives
	// from the connector's threshold.
	minBeatInterval = 250 * time.Millisecond
	// v1Retry is how long a session that met a connector speaking only
	// an older protocol version keeps to it before it tries the newest
	// again (the connector may have been upgraded).
	v1Retry = 10 * time.Minute
	// closedPoll is how often a closed session checks whether the
	// streams it handed out were closed, to say goodbye after the last.
	closedPoll = 250 * time.Millisecond
)

// session is the agent half. It is lazy: every Accept dials one pool link
// and every Open one stream; nothing is connected in between except, with
// protocol version 2, one control link. The control link starts with the
// session's first link the connector accepts and lives until the session
// is closed and every stream it handed out is closed; it beats so that
// the connector keeps (and the agent keeps) the bound streams, which are
// bare byte pipes, only while the other end is alive.
type session struct {
	t   *Transport
	cfg sdk.DialConfig
	log *slog.Logger
	id  instanceID
	// tls holds the client configs of the session's links, made once
	// per session and shared by them; nil without TLS.
	tls *linkTLS

	// learned is the connector's heartbeat threshold in nanoseconds, from
	// its last version 2 answer; 0 until then.
	learned atomic.Int64
	// downUntil is when (unix nanoseconds) the session tries its newest
	// protocol version again after a connector refused it as
	// incompatible; until then it speaks downTo.
	downUntil atomic.Int64
	downTo    atomic.Uint32

	ctx    context.Context // done once Close is called
	cancel context.CancelFunc
	// ctlCtx is done once the session is closed and holds no stream: the
	// control link then says goodbye and ends.
	ctlCtx    context.Context
	ctlCancel context.CancelFunc

	mu      sync.Mutex
	streams map[*agentStream]struct{} // bound streams handed out (version 2)
	ctlOn   bool                      // the control goroutine runs
	ctlWG   sync.WaitGroup            // the control goroutine, for Close
	warned  bool                      // the version 1 fallback was logged
	warned2 bool                      // the version 2 fallback was logged
	warned3 bool                      // a fallback to version 3 was logged
}

// agentStream is a stream the session handed out, watched so that it can
// be closed when the connector falls silent, and forgotten once closed.
type agentStream struct {
	raw net.Conn
	rc  syscall.RawConn
}

func newSession(t *Transport, cfg sdk.DialConfig) *session {
	ctx, cancel := context.WithCancel(context.Background())
	cctx, ccancel := context.WithCancel(context.Background())
	s := &session{
		t:         t,
		cfg:       cfg,
		log:       sdk.Logger(cfg.Logger),
		ctx:       ctx,
		cancel:    cancel,
		ctlCtx:    cctx,
		ctlCancel: ccancel,
		streams:   make(map[*agentStream]struct{}),
		tls:       newLinkTLS(cfg.TLS, cfg.Addr),
	}
	rand.Read(s.id[:])
	return s
}

// timings returns the beat interval and the silence threshold of the
// session's links. Once the connector told its threshold (version 2), the
// interval fits well inside it: a quarter of it (at least minBeatInterval),
// or the configured interval when that is at most half of it. The agent's
// own silence threshold is the configured one, else the connector's.
func (s *session) timings() (interval, threshold time.Duration) {
	learned := time.Duration(s.learned.Load())
	threshold = s.cfg.HeartbeatThreshold
	if threshold == 0 {
		threshold = learned
	}
	if threshold == 0 {
		threshold = sdk.DefaultHeartbeatThreshold
	}
	interval = s.cfg.HeartbeatInterval
	switch {
	case learned == 0 && interval == 0:
		// Version 1: the connector's threshold is unknown.
		interval = min(sdk.DefaultHeartbeatInterval, threshold/4)
	case learned > 0 && (interval == 0 || interval > learned/2):
		interval = max(min(learned, threshold)/4, minBeatInterval)
	}
	return max(interval, time.Millisecond), threshold
}

// version is the protocol version the session speaks now.
func (s *session) version() byte {
	if time.Now().UnixNano() < s.downUntil.Load() {
		return byte(s.downTo.Load())
	}
	return s.t.cfg.maxVersion
}

// downgrade makes the session speak the version before v for a while,
// after the connector refused v as incompatible, and logs it the first
// time.
func (s *session) downgrade(v byte) {
	to := v - 1
	s.downTo.Store(uint32(to))
	s.downUntil.Store(time.Now().Add(v1Retry).UnixNano())
	s.mu.Lock()
	warned := &s.warned
	switch {
	case to >= protocolV3:
		warned = &s.warned3
	case to == protocolV2:
		warned = &s.warned2
	}
	warn := !*warned
	*warned = true
	s.mu.Unlock()
	switch {
	case !warn:
	case to == protocolV1:
		s.log.Warn("the connector speaks protocol version 1 only; falling back to it: streams bound to this agent are not covered by heartbeats until the connector is upgraded", "retry_v2_in", v1Retry)
	case to >= protocolV3:
		s.log.Debug("the connector speaks an older protocol version; falling back to it: each bind waits for the agent's acknowledgement", "version", to, "retry_in", v1Retry)
	default:
		s.log.Info("the connector speaks an older protocol version; falling back to it: it cannot send public clients' addresses, so no PROXY protocol header reaches the local service until the connector is upgraded", "version", to, "retry_in", v1Retry)
	}
}

// connect dials the connector and runs the hello for role, falling back
// to version 1 when the connector does not speak version 2. Until it
// returns, ctx aborts it, and so does Close unless role is roleControl.
// It returns the link and the version it speaks.
func (s *session) connect(ctx context.Context, role byte) (net.Conn, byte, error) {
	retries := 0
	for {
		v := s.version()
		c, err := s.handshake(ctx, role, v)
		if v > protocolV1 && role != roleControl && errors.Is(err, sdk.ErrIncompatible) {
			s.downgrade(v)
			continue
		}
		if errors.Is(err, errNotResumed) && retries < maxResumeRetries {
			// The connector did not take the ticket (it restarted, or
			// the ticket expired) or refused the resuming hello: the
			// cache entry is gone, so the next try runs a full handshake
			// with every key exchange.
			retries++
			continue
		}
		if err != nil {
			return nil, v, err
		}
		if v >= protocolV2 {
			s.startControl()
		}
		return c, v, nil
	}
}

// handshake dials and runs one hello of version v.
func (s *session) handshake(ctx context.Context, role, v byte) (net.Conn, error) {
	sctx := s.ctx
	if role == roleControl {
		sctx = s.ctlCtx
	}
	if sctx.Err() != nil {
		return nil, fmt.Errorf("tcp: %w", sdk.ErrClosed)
	}
	hello, err := appendHello(nil, v, role, s.cfg.Passcode, s.id)
	if err != nil {
		return nil, err
	}
	// KeepAlive -1: tuneLiveness sets the link's keepalive, once.
	d := net.Dialer{Timeout: s.t.cfg.DialTimeout, KeepAlive: -1}
	raw, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("tcp: dial %s: %w", s.cfg.Addr, err)
	}
	_, threshold := s.timings()
	tuneLiveness(raw, threshold)
	abort := func() { raw.SetDeadline(time.Unix(1, 0)) }
	stop1 := context.AfterFunc(ctx, abort)
	stop2 := context.AfterFunc(sctx, abort)
	raw.SetDeadline(time.Now().Add(s.t.cfg.HandshakeTimeout))
	c := raw
	var tc *tls.Config
	if s.tls != nil {
		tc = s.tls.config()
		c = tls.Client(raw, tc)
	}
	var learned time.Duration
	_, err = c.Write(hello)
	if err == nil {
		learned, err = readAnswer(c, v)
	}
	ok1, ok2 := stop1(), stop2()
	switch {
	case !ok1:
		c.Close()
		return nil, ctx.Err()
	case !ok2:
		c.Close()
		return nil, fmt.Errorf("tcp: %w", sdk.ErrClosed)
	case err != nil:
		c.Close()
		if s.tls != nil && s.tls.failed(tc, err) && !errors.Is(err, errNotResumed) {
			err = fmt.Errorf("%w: %w", errNotResumed, err)
		}
		return nil, fmt.Errorf("tcp: handshake with %s: %w", s.cfg.Addr, err)
	}
	if learned > 0 {
		s.learned.Store(int64(learned))
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// Accept implements [sdk.Session.Accept]: it dials one pool link, keeps it
// alive with heartbeats, and returns it as a bare stream once the
// connector binds a client to it.
func (s *session) Accept(ctx context.Context) (net.Conn, error) {
	c, v, err := s.connect(ctx, rolePool)
	if err != nil {
		return nil, err
	}
	interval, threshold := s.timings()
	// Beats run on a timer rather than a goroutine of their own: the
	// link's Accept then returns without waiting for one to end. bound
	// (under wmu) stops them for good.
	var (
		wmu   sync.Mutex
		bound bool
		beat  *time.Timer
	)
	wmu.Lock()
	if v >= protocolV4 {
		// The connector beats the link and this side echoes (idle), so
		// that the connector can bind it without an ack: silence is
		// judged against the connector's threshold, which sets its beats.
		threshold = max(threshold, time.Duration(s.learned.Load()))
	} else {
		beat = time.AfterFunc(interval, func() {
			wmu.Lock()
			defer wmu.Unlock()
			if bound {
				return
			}
			c.SetWriteDeadline(time.Now().Add(threshold))
			if _, err := c.Write([]byte{frameBeat}); err != nil {
				c.SetReadDeadline(time.Unix(1, 0)) // wake the reader
				return
			}
			beat.Reset(interval)
		})
	}
	wmu.Unlock()
	abort := func() { c.SetReadDeadline(time.Unix(1, 0)) }
	stop1 := context.AfterFunc(ctx, abort)
	stop2 := context.AfterFunc(s.ctx, abort)
	origin, hasOrigin, err := s.idle(c, v, threshold, &wmu, &bound)
	wmu.Lock()
	bound = true
	if beat != nil {
		beat.Stop()
	}
	wmu.Unlock()
	ok1, ok2 := stop1(), stop2()
	switch {
	case err == nil && ok1 && ok2:
		c.SetDeadline(time.Time{})
		if v >= protocolV2 {
			s.track(c)
		}
		if hasOrigin {
			return &originConn{Conn: c, origin: origin}, nil
		}
		return c, nil
	case !ok1:
		err = ctx.Err()
	case !ok2:
		err = fmt.Errorf("tcp: %w", sdk.ErrClosed)
	default:
		err = fmt.Errorf("tcp: idle link to %s: %w", s.cfg.Addr, err)
	}
	c.Close()
	return nil, err
}

// idle reads an idle link of version v's frames until the connector binds
// it, and returns the origin the bind carried, if any (version 3). A bind
// whose origin is malformed fails the link, unacknowledged.
func (s *session) idle(c net.Conn, v byte, threshold time.Duration, wmu *sync.Mutex, bound *bool) (sdk.Origin, bool, error) {
	var b [1]byte
	for {
		c.SetReadDeadline(time.Now().Add(threshold))
		if _, err := c.Read(b[:]); err != nil {
			return sdk.Origin{}, false, err
		}
		switch b[0] {
		case frameBeat:
			if v >= protocolV4 {
				// The connector's beat: echo it.
				wmu.Lock()
				c.SetWriteDeadline(time.Now().Add(threshold))
				_, err := c.Write(b[:])
				wmu.Unlock()
				if err != nil {
					return sdk.Origin{}, false, err
				}
			}
		case frameBind:
			var (
				o  sdk.Origin
				ok bool
			)
			if v >= protocolV3 {
				var err error
				if o, ok, err = readBindOrigin(c); err != nil {
					return o, false, err
				}
			}
			wmu.Lock()
			*bound = true
			var err error
			if v < protocolV4 {
				c.SetWriteDeadline(time.Now().Add(threshold))
				_, err = c.Write([]byte{frameAck})
			}
			wmu.Unlock()
			return o, ok, err
		default:
			return sdk.Origin{}, false, fmt.Errorf("%w: frame %q on an idle link", ErrProtocol, b[0])
		}
	}
}

// originConn is a bound stream whose bind carried the client's origin.
// It reports it ([sdk.OriginStream]) and gives back the connection it
// wraps (NetConn), so that the agent relays the bare socket by splice.
type originConn struct {
	net.Conn
	origin sdk.Origin
}

// Origin implements [sdk.OriginStream].
func (c *originConn) Origin() (sdk.Origin, bool) { return c.origin, true }

// NetConn returns the wrapped connection.
func (c *originConn) NetConn() net.Conn { return c.Conn }

// CloseWrite implements [sdk.CloseWriter] when the wrapped connection does.
func (c *originConn) CloseWrite() error {
	if cw, ok := c.Conn.(sdk.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("tcp: %T cannot half-close", c.Conn)
}

// Open implements [sdk.Session.Open]: it dials a stream in the "open"
// role, a bare byte pipe once the connector accepted it.
func (s *session) Open(ctx context.Context) (net.Conn, error) {
	c, v, err := s.connect(ctx, roleOpen)
	if err != nil {
		return nil, err
	}
	if v >= protocolV2 {
		s.track(c)
	}
	return c, nil
}

// Close implements [sdk.Session.Close]. It aborts pending Accept and Open
// calls, whose links are closed. Streams already handed out stay open,
// and the control link keeps beating for them until they are closed.
func (s *session) Close() error {
	s.cancel()
	if s.finished() {
		// Nothing left to beat for: the control goroutine says goodbye
		// and ends; wait for it, as a Close should.
		s.ctlWG.Wait()
	}
	return nil
}

// Lazy reports that the session makes one connection per stream and never
// fails as a whole: an error from Accept or Open concerns one link. The
// agent runner (sdk/agent) keeps such a session across link failures.
func (s *session) Lazy() bool { return true }

// track records a stream handed out, covered by the control link.
func (s *session) track(c net.Conn) {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.streams[&agentStream{raw: raw, rc: rc}] = struct{}{}
	s.mu.Unlock()
}

// pruneLocked forgets the streams their owner closed and returns how many
// remain. s.mu is held.
func (s *session) pruneLocked() int {
	for st := range s.streams {
		if st.rc.Control(func(uintptr) {}) != nil {
			delete(s.streams, st)
		}
	}
	return len(s.streams)
}

// finished reports whether the session is closed and holds no stream, and
// then ends the control link's life.
func (s *session) finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pruneLocked() == 0 && s.ctx.Err() != nil {
		s.ctlCancel()
		return true
	}
	return false
}

// killStreams closes every stream handed out and returns how many were
// open.
func (s *session) killStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pruneLocked()
	for st := range s.streams {
		st.raw.Close()
		delete(s.streams, st)
	}
	return n
}

// startControl starts the control goroutine unless it runs or the
// session is finished.
func (s *session) startControl() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctlOn || s.ctlCtx.Err() != nil {
		return
	}
	s.ctlOn = true
	s.ctlWG.Add(1)
	go s.control()
}

// control keeps the control link up, redialling it with backoff, until
// the session is finished.
func (s *session) control() {
	defer s.ctlWG.Done()
	defer func() {
		s.mu.Lock()
		s.ctlOn = false
		s.mu.Unlock()
	}()
	const first = 100 * time.Millisecond
	delay := first
	// finished is checked before each dial and before each retry, so a
	// session closed while its control link was down, whose last stream
	// then closed, stops redialling instead of running on.
	for !s.finished() && s.ctlCtx.Err() == nil {
		c, _, err := s.connect(s.ctlCtx, roleControl)
		if err == nil {
			delay = first
			if err = s.runControl(c); err == nil {
				return
			}
		}
		if s.finished() || s.ctlCtx.Err() != nil || s.version() < protocolV2 {
			return
		}
		interval, _ := s.timings()
		s.log.Debug("control link failed; redialling", "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-s.ctlCtx.Done():
			return
		}
		delay = min(2*delay, max(interval, time.Second))
	}
}

// runControl beats on the control link c and reads the connector's
// echoes. It returns nil once the session is finished (after a goodbye),
// or why the link ended; when the connector stayed silent past the
// threshold it first closes every stream handed out.
func (s *session) runControl(c net.Conn) error {
	defer c.Close()
	interval, threshold := s.timings()
	errc := make(chan error, 1)
	go func() {
		var b [1]byte
		for {
			c.SetReadDeadline(time.Now().Add(threshold))
			if _, err := c.Read(b[:]); err != nil {
				errc <- err
				return
			}
			if b[0] != frameBeat {
				errc <- fmt.Errorf("%w: frame %q on a control link", ErrProtocol, b[0])
				return
			}
		}
	}()
	write := func(frame byte) error {
		// A goodbye to a frozen connector must not hold Close for a
		// whole threshold.
		d := threshold
		if frame == frameBye {
			d = min(d, time.Second)
		}
		c.SetWriteDeadline(time.Now().Add(d))
		_, err := c.Write([]byte{frame})
		return err
	}
	beat := time.NewTicker(interval)
	defer beat.Stop()
	closed := s.ctx.Done()
	var prune <-chan time.Time
	for {
		select {
		case <-beat.C:
			s.finished()
			if err := write(frameBeat); err != nil {
				return err
			}
		case <-closed:
			// Closed: watch the streams left, to say goodbye once the last
			// one is closed.
			closed = nil
			t := time.NewTicker(closedPoll)
			defer t.Stop()
			prune = t.C
		case <-prune:
			s.finished()
		case <-s.ctlCtx.Done():
			write(frameBye)
			return nil
		case err := <-errc:
			if os.IsTimeout(err) {
				n := s.killStreams()
				s.log.Warn("connector silent past the heartbeat threshold; closed the streams bound through it", "threshold", threshold, "streams", n)
				return fmt.Errorf("tcp: control link silent for %v: %w", threshold, err)
			}
			return err
		}
	}
}

var (
	_ sdk.Session      = (*session)(nil)
	_ sdk.OriginStream = (*originConn)(nil)
	_ sdk.CloseWriter  = (*originConn)(nil)
)
