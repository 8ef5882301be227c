// Package websocket is an iofog-connector transport that carries agent
// links over WebSocket, so agents behind proxies that pass only HTTP(S) can
// reach the connector. It is a third-party transport built from the sdk
// alone, served as a plugin by the command in the parent directory.
//
// Wire format: every connection is a WebSocket (ws://, or wss:// when the
// endpoint has TLS) to /iofog/v1/link. Its binary frames carry bytes; the
// text frame "FIN" half-closes a direction. The first bytes on a
// connection are "REF1", a kind byte, a one-byte passcode length, the
// passcode and, for stream connections, the 8-byte session id (and for
// connector-requested streams the 8-byte stream id). The connector answers
// one status byte (0 ok, 1 bad passcode, 2 link limit; and, for a control
// connection, the session id). A session (a link, counted by MaxLinks) is
// one control connection carrying heartbeats ('B' both ways), the
// endpoint's heartbeat threshold ('T', milliseconds in ASCII decimal, ';',
// sent once after the answer) and stream requests ('P' and an id); every
// stream is a WebSocket of its own. Agents beat at a quarter of the
// threshold they are told. An agent of an earlier release, which reads
// any byte but 'P' as a sign of life, skips the threshold message.
//
// Origins: an agent whose control connection is of kind 'c' instead of
// 'C' reads stream requests that carry the stream's origin (sdk.Origin,
// the public client's address): 'Q', the id, a length byte and the
// origin's wire form. The connector sends 'Q' to such agents only, when
// Open is given an origin; the agent's stream then reports it
// (sdk.OriginStream). A connector of an earlier release closes a 'c'
// connection unanswered, and the agent dials again with 'C'.
//
// Liveness: a connector that hears nothing on a control connection for
// the threshold drops the session and aborts its streams (closes them
// without the FIN message, so their relays see an error), whether they
// are idle or carrying bytes.
package websocket

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	xws "golang.org/x/net/websocket"

	"github.com/iofog/iofog-connector/sdk"
)

const (
	kindControl = 'C'
	kindData    = 'D' // a stream the connector asked for
	kindOpen    = 'O' // a stream the agent opened

	// kindControlOrigins is a control connection of an agent that reads
	// 'Q' (a stream request with the stream's origin). A connector of an
	// earlier release closes it unanswered, and the agent dials again
	// with kindControl.
	kindControlOrigins = 'c'

	statusOK       = 0
	statusBadPass  = 1
	statusLimit    = 2
	statusNoSuchID = 3
)

// Path is the HTTP path agents connect to.
const Path = "/iofog/v1/link"

// Transport carries agent links over WebSocket. The zero value is ready.
type Transport struct {
	// noOrigins makes the connector half behave as one of an earlier
	// release, which closes kindControlOrigins connections unanswered
	// (tests).
	noOrigins bool
}

// New returns the WebSocket transport.
func New() Transport { return Transport{} }

// Name returns "websocket".
func (Transport) Name() string { return "websocket" }

func (t Transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("websocket: listen: %w", err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	if cfg.HeartbeatThreshold == 0 {
		cfg.HeartbeatThreshold = sdk.DefaultHeartbeatThreshold
	}
	e := &endpoint{
		noOrigins: t.noOrigins,
		cfg:       cfg,
		ln:        ln,
		sessions:  map[uint64]*srvSession{},
		waiting:   map[uint64]chan net.Conn{},
		changed:   make(chan struct{}),
		accepted:  make(chan net.Conn, 256),
		closed:    make(chan struct{}),
	}
	e.srv = &http.Server{
		Handler:           xws.Server{Handler: e.serveWS, Handshake: func(*xws.Config, *http.Request) error { return nil }},
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, rawConnKey{}, c)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	e.srvDone = make(chan struct{})
	go func() {
		defer close(e.srvDone)
		e.srv.Serve(ln)
	}()
	return e, nil
}

type rawConnKey struct{}

type endpoint struct {
	noOrigins bool // Transport.noOrigins
	cfg       sdk.EndpointConfig
	ln        net.Listener
	srv       *http.Server
	srvDone   chan struct{}
	wg        sync.WaitGroup

	mu       sync.Mutex
	sessions map[uint64]*srvSession
	waiting  map[uint64]chan net.Conn
	nextID   uint64
	rr       int
	changed  chan struct{} // closed and replaced when sessions change
	accepted chan net.Conn
	closed   chan struct{}
	once     sync.Once
}

type srvSession struct {
	origins bool // the agent reads 'Q' (kindControlOrigins)
	ctrl    net.Conn
	wmu     sync.Mutex
	dead    chan struct{}
	once    sync.Once
	streams streamSet
}

// streamSet holds the streams of a session that are not closed yet.
type streamSet struct {
	mu sync.Mutex
	m  map[*stream]struct{}
}

// add tracks st until it closes.
func (ss *streamSet) add(st *stream) {
	ss.mu.Lock()
	if ss.m == nil {
		ss.m = map[*stream]struct{}{}
	}
	ss.m[st] = struct{}{}
	ss.mu.Unlock()
	st.onClose = func() {
		ss.mu.Lock()
		delete(ss.m, st)
		ss.mu.Unlock()
	}
}

// abort aborts every stream tracked.
func (ss *streamSet) abort() {
	ss.mu.Lock()
	all := make([]*stream, 0, len(ss.m))
	for st := range ss.m {
		all = append(all, st)
	}
	ss.mu.Unlock()
	for _, st := range all {
		st.Abort()
	}
}

func (ss *streamSet) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

func (s *srvSession) send(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.ctrl.Write(b)
	return err
}

// kill ends the session; silent (its agent stopped beating) aborts its
// streams too, since that agent is gone with them.
func (s *srvSession) kill(silent bool) {
	s.once.Do(func() {
		close(s.dead)
		s.ctrl.Close()
		if silent {
			s.streams.abort()
		}
	})
}

func (e *endpoint) notify() { // e.mu held
	close(e.changed)
	e.changed = make(chan struct{})
}

// serveWS runs one WebSocket connection until it is closed.
func (e *endpoint) serveWS(ws *xws.Conn) {
	raw, ok := ws.Request().Context().Value(rawConnKey{}).(net.Conn)
	if !ok {
		ws.Close()
		return
	}
	e.mu.Lock()
	select {
	case <-e.closed:
		e.mu.Unlock()
		raw.Close()
		return
	default:
	}
	e.wg.Add(1)
	e.mu.Unlock()
	s := newStream(ws, raw)
	e.handle(s)
	e.wg.Done()
	<-s.done // the handler's return would close the connection
}

func readHeader(c net.Conn) (kind byte, pass string, ids [2]uint64, err error) {
	var h [6]byte
	if _, err = io.ReadFull(c, h[:]); err != nil {
		return
	}
	if string(h[:4]) != "REF1" {
		err = errors.New("bad magic")
		return
	}
	kind = h[4]
	p := make([]byte, h[5])
	if _, err = io.ReadFull(c, p); err != nil {
		return
	}
	pass = string(p)
	n := map[byte]int{kindControl: 0, kindOpen: 1, kindData: 2}[kind]
	var b [16]byte
	if _, err = io.ReadFull(c, b[:8*n]); err != nil {
		return
	}
	ids[0], ids[1] = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	return
}

func (e *endpoint) handle(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	kind, pass, ids, err := readHeader(c)
	if err != nil {
		c.Close()
		return
	}
	if subtle.ConstantTimeCompare([]byte(pass), []byte(e.cfg.Passcode)) != 1 {
		c.Write([]byte{statusBadPass})
		c.Close()
		return
	}
	e.mu.Lock()
	select {
	case <-e.closed:
		e.mu.Unlock()
		c.Close()
		return
	default:
	}
	if kind == kindControlOrigins && e.noOrigins {
		kind = 0 // as an earlier release: unknown, closed unanswered
	}
	switch kind {
	case kindControl, kindControlOrigins:
		if e.cfg.MaxLinks > 0 && len(e.sessions) >= e.cfg.MaxLinks {
			e.mu.Unlock()
			c.Write([]byte{statusLimit})
			c.Close()
			return
		}
		e.nextID++
		id := e.nextID
		s := &srvSession{ctrl: c, dead: make(chan struct{}), origins: kind == kindControlOrigins}
		e.sessions[id] = s
		e.notify()
		e.mu.Unlock()
		var reply [9]byte
		binary.BigEndian.PutUint64(reply[1:], id)
		c.SetDeadline(time.Time{})
		if _, err := c.Write(reply[:]); err != nil {
			s.kill(false)
		} else if err := s.send(thresholdMsg(e.cfg.HeartbeatThreshold)); err != nil {
			s.kill(false)
		}
		e.control(id, s)
	case kindData, kindOpen:
		s := e.sessions[ids[0]]
		var ch chan net.Conn
		if kind == kindData {
			ch = e.waiting[ids[1]]
			delete(e.waiting, ids[1])
		}
		e.mu.Unlock()
		if s == nil || (kind == kindData && ch == nil) {
			c.Write([]byte{statusNoSuchID})
			c.Close()
			return
		}
		c.SetDeadline(time.Time{})
		if _, err := c.Write([]byte{statusOK}); err != nil {
			c.Close()
			return
		}
		if st, ok := c.(*stream); ok {
			s.streams.add(st)
		}
		if kind == kindData {
			ch <- c // buffered
			return
		}
		select {
		case e.accepted <- c:
		default:
			c.Close() // nobody takes streams: refuse
		}
	default:
		e.mu.Unlock()
		c.Close()
	}
}

func (e *endpoint) control(id uint64, s *srvSession) {
	defer func() {
		e.mu.Lock()
		delete(e.sessions, id)
		e.notify()
		e.mu.Unlock()
	}()
	buf := make([]byte, 1)
	for {
		s.ctrl.SetReadDeadline(time.Now().Add(e.cfg.HeartbeatThreshold))
		_, err := s.ctrl.Read(buf)
		if err != nil {
			var ne net.Error
			s.kill(errors.As(err, &ne) && ne.Timeout())
			return
		}
		if buf[0] == 'B' {
			if s.send([]byte{'B'}) != nil {
				s.kill(false)
				return
			}
		}
	}
}

func (e *endpoint) Open(ctx context.Context) (net.Conn, error) {
	for {
		e.mu.Lock()
		select {
		case <-e.closed:
			e.mu.Unlock()
			return nil, sdk.ErrClosed
		default:
		}
		var s *srvSession
		if n := len(e.sessions); n > 0 {
			i := 0
			e.rr++
			for _, cand := range e.sessions {
				if i == e.rr%n {
					s = cand
				}
				i++
			}
		}
		changed := e.changed
		if s == nil {
			e.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-e.closed:
				return nil, sdk.ErrClosed
			case <-changed:
				continue
			}
		}
		e.nextID++
		id := e.nextID
		ch := make(chan net.Conn, 1)
		e.waiting[id] = ch
		e.mu.Unlock()
		var msg [9]byte
		msg[0] = 'P'
		binary.BigEndian.PutUint64(msg[1:], id)
		req := msg[:]
		if o, ok := sdk.OriginFrom(ctx); ok && s.origins {
			req = originMsg(id, o)
		}
		err := s.send(req)
		if err == nil {
			select {
			case c := <-ch:
				return c, nil
			case <-s.dead:
			case <-ctx.Done():
				err = ctx.Err()
			case <-e.closed:
				err = sdk.ErrClosed
			}
		} else {
			s.kill(false)
		}
		e.mu.Lock()
		delete(e.waiting, id)
		e.mu.Unlock()
		select {
		case c := <-ch:
			if err == nil {
				return c, nil
			}
			c.Close()
		default:
		}
		if err != nil {
			return nil, err
		}
	}
}

func (e *endpoint) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case <-e.closed:
		return nil, sdk.ErrClosed
	default:
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

func (e *endpoint) Close() error {
	e.once.Do(func() {
		e.mu.Lock()
		close(e.closed)
		sessions := make([]*srvSession, 0, len(e.sessions))
		for _, s := range e.sessions {
			sessions = append(sessions, s)
		}
		e.mu.Unlock()
		e.srv.Close() // hijacked WebSockets are not the server's to close
		<-e.srvDone
		for _, s := range sessions {
			s.kill(false)
		}
	})
	e.wg.Wait()
	for {
		select {
		case c := <-e.accepted:
			c.Close()
		default:
			return nil
		}
	}
}

func (e *endpoint) Stats() sdk.EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sdk.EndpointStats{Links: len(e.sessions)}
}

// The agent half.

// errUnanswered is a connection the connector closed before answering: a
// connector of an earlier release does that to kindControlOrigins.
var errUnanswered = errors.New("websocket: the connector closed the connection unanswered")

// Dial connects a session. Its heartbeat timings are cfg's; once the
// connector has told its threshold, the session beats at a quarter of it
// (or at cfg.HeartbeatInterval when shorter) and, when cfg sets no
// threshold of its own, drops a connector silent for it.
func (t Transport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &session{cfg: cfg, accepted: make(chan net.Conn, 64), done: make(chan struct{}), retime: make(chan struct{}, 1)}
	c, reply, err := s.connect(ctx, kindControlOrigins, 8)
	if errors.Is(err, errUnanswered) && ctx.Err() == nil {
		// A connector of an earlier release: no origins.
		c, reply, err = s.connect(ctx, kindControl, 8)
	}
	if err != nil {
		return nil, err
	}
	s.ctrl, s.id = c, binary.BigEndian.Uint64(reply)
	s.wg.Add(2)
	go s.read()
	go s.beat()
	return s, nil
}

type session struct {
	cfg      sdk.DialConfig // as given: zero timings mean "not set"
	ctrl     net.Conn
	id       uint64
	wmu      sync.Mutex
	accepted chan net.Conn
	done     chan struct{}
	once     sync.Once
	err      error
	wg       sync.WaitGroup
	streams  streamSet
	told     atomic.Int64  // the connector's threshold, ns; 0 until told
	retime   chan struct{} // wakes beat when told changes
}

// HeartbeatThreshold returns the threshold the connector told, or zero.
// The plugin host uses it (sdk/plugin's ThresholdReporter).
func (s *session) HeartbeatThreshold() time.Duration { return time.Duration(s.told.Load()) }

// threshold is how long the session waits to hear from the connector.
func (s *session) threshold() time.Duration {
	switch {
	case s.cfg.HeartbeatThreshold > 0:
		return s.cfg.HeartbeatThreshold
	case s.told.Load() > 0:
		return time.Duration(s.told.Load())
	}
	return sdk.DefaultHeartbeatThreshold
}

// interval is how often the session beats.
func (s *session) interval() time.Duration {
	return beatInterval(time.Duration(s.told.Load()), s.cfg.HeartbeatInterval)
}

// connect dials one connection of kind and reads the status (and extra
// reply bytes), all bounded by ctx.
func (s *session) connect(ctx context.Context, kind byte, extra int, ids ...uint64) (*stream, []byte, error) {
	raw, err := new(net.Dialer).DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: dial: %w", err)
	}
	scheme := "ws"
	wcfg, err := xws.NewConfig("ws://"+s.cfg.Addr+Path, "http://"+s.cfg.Addr+"/")
	if err != nil {
		raw.Close()
		return nil, nil, fmt.Errorf("websocket: %w: %v", sdk.ErrInvalidConfig, err)
	}
	if s.cfg.TLS != nil {
		tc := s.cfg.TLS
		if tc.ServerName == "" { // as tls.Dial does
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(s.cfg.Addr)
		}
		raw = tls.Client(raw, tc)
		scheme = "wss"
	}
	wcfg.Location.Scheme = scheme
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	ws, err := xws.NewClient(wcfg, raw)
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("websocket: handshake: %w", err)
	}
	c := newStream(ws, raw)
	hdr := append([]byte("REF1"), kind, byte(len(s.cfg.Passcode)))
	hdr = append(hdr, s.cfg.Passcode...)
	for _, id := range ids {
		hdr = binary.BigEndian.AppendUint64(hdr, id)
	}
	reply := make([]byte, 1+extra)
	if _, err = c.Write(hdr); err == nil {
		if _, err = io.ReadFull(c, reply[:1]); err == io.EOF {
			err = errUnanswered
		}
	}
	if err == nil && reply[0] == statusOK {
		_, err = io.ReadFull(c, reply[1:])
	}
	if err == nil && stop() {
		c.SetDeadline(time.Time{})
	} else if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("websocket: handshake: %w", err)
	}
	switch reply[0] {
	case statusOK:
		return c, reply[1:], nil
	case statusBadPass:
		err = sdk.ErrBadPasscode
	case statusLimit:
		err = sdk.ErrLinkLimit
	default:
		err = fmt.Errorf("websocket: refused with status %d", reply[0])
	}
	c.Close()
	return nil, nil, err
}

// fail ends the session; silent (the connector stopped answering) aborts
// its streams too.
func (s *session) fail(err error, silent bool) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		s.ctrl.Close()
		if silent {
			s.streams.abort()
		}
	})
}

func (s *session) read() {
	defer s.wg.Done()
	for {
		s.ctrl.SetReadDeadline(time.Now().Add(s.threshold()))
		m, err := readMsg(s.ctrl)
		if err != nil {
			var ne net.Error
			silent := errors.As(err, &ne) && ne.Timeout()
			s.fail(fmt.Errorf("websocket: session lost: %w", err), silent)
			return
		}
		switch m.kind {
		case 'P', 'Q':
			s.wg.Add(1)
			go s.stream(m.id, m.origin, m.kind == 'Q')
		case 'T':
			if s.told.Swap(int64(m.threshold)) != int64(m.threshold) {
				select {
				case s.retime <- struct{}{}:
				default:
				}
			}
		}
	}
}

func (s *session) stream(id uint64, o sdk.Origin, hasOrigin bool) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {}) // placeholder for symmetry
	defer stop()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, _, err := s.connect(ctx, kindData, 0, s.id, id)
	if err != nil {
		return
	}
	c.origin, c.hasOrigin = o, hasOrigin
	s.track(c)
	select {
	case s.accepted <- c:
	case <-s.done:
		c.Close()
	}
}

func (s *session) track(c *stream) { s.streams.add(c) }

func (s *session) beat() {
	defer s.wg.Done()
	every := s.interval()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.retime:
			if now := s.interval(); now != every {
				every = now
				t.Reset(every)
			}
			continue
		case <-t.C:
			s.wmu.Lock()
			_, err := s.ctrl.Write([]byte{'B'})
			s.wmu.Unlock()
			if err != nil {
				s.fail(fmt.Errorf("websocket: heartbeat: %w", err), false)
				return
			}
		}
	}
}

func (s *session) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case <-s.done:
		return nil, s.err
	default:
	}
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.done:
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *session) Open(ctx context.Context) (net.Conn, error) {
	select {
	case <-s.done:
		return nil, s.err
	default:
	}
	c, _, err := s.connect(ctx, kindOpen, 0, s.id)
	if err != nil {
		return nil, err
	}
	s.track(c)
	return c, nil
}

func (s *session) Close() error {
	s.fail(sdk.ErrClosed, false)
	s.wg.Wait()
	for {
		select {
		case c := <-s.accepted:
			c.Close()
		default:
			return nil
		}
	}
}

var (
	_ sdk.Transport     = Transport{}
	_ sdk.Endpoint      = (*endpoint)(nil)
	_ sdk.StatsReporter = (*endpoint)(nil)
	_ sdk.Session       = (*session)(nil)
)
