// Package reftransport is a small reference transport that follows the sdk
// contract, used to prove the conformance suite (sdk/transporttest) and the
// plugin boundary (sdk/plugin) before real transports rely on them. It is
// not shipped in the connector.
//
// Wire format: every TCP (optionally TLS) connection starts with
// "REF1", a kind byte, a one-byte passcode length, the passcode and, for
// stream connections, the 8-byte session id (and for connector-requested
// streams the 8-byte stream id). The connector answers one status byte
// (and, for a control connection, the session id). A session is one control
// connection carrying heartbeats ('B' both ways), the endpoint's heartbeat
// threshold ('T', milliseconds in ASCII decimal, ';', once after the
// answer: agents beat at a quarter of it; agents that do not know the
// message read its bytes as signs of life) and stream requests ('P' and an
// id, or 'Q', an id and the stream's origin: a length byte and
// sdk.Origin's wire form); every stream is a connection of its own.
//
// A side that hears nothing on the control connection for its threshold
// ends the session and aborts its streams (a TCP reset, so their peers
// read an error rather than EOF), idle or carrying bytes.
package reftransport

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

const (
	kindControl = 'C'
	kindData    = 'D' // a stream the connector asked for
	kindOpen    = 'O' // a stream the agent opened

	statusOK       = 0
	statusBadPass  = 1
	statusLimit    = 2
	statusNoSuchID = 3
)

// Transport is the reference transport. fault, when set, breaks one rule
// on purpose so the suite can be shown to catch it.
type Transport struct{ fault string }

// New returns the reference transport.
func New() Transport { return Transport{} }

// NewFaulty returns a reference transport that breaks one rule: fault is
// "nopasscode", "nolimit", "noheartbeat", "nothreshold" (agents are not
// told the endpoint's threshold) or "leak".
func NewFaulty(fault string) Transport { return Transport{fault: fault} }

func (Transport) Name() string { return "ref" }

func (t Transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ref: listen: %w", err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	if cfg.HeartbeatThreshold == 0 {
		cfg.HeartbeatThreshold = sdk.DefaultHeartbeatThreshold
	}
	e := &refEndpoint{
		fault:    t.fault,
		cfg:      cfg,
		ln:       ln,
		sessions: map[uint64]*srvSession{},
		waiting:  map[uint64]chan net.Conn{},
		changed:  make(chan struct{}),
		accepted: make(chan net.Conn, 256),
		closed:   make(chan struct{}),
	}
	e.wg.Add(1)
	go e.serve()
	return e, nil
}

type refEndpoint struct {
	fault string
	cfg   sdk.EndpointConfig
	ln    net.Listener
	wg    sync.WaitGroup

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
	ctrl    net.Conn
	wmu     sync.Mutex
	dead    chan struct{}
	once    sync.Once
	streams streamSet
}

func (s *srvSession) send(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.ctrl.Write(b)
	return err
}

func (s *srvSession) kill(silent bool) {
	s.once.Do(func() {
		close(s.dead)
		s.ctrl.Close()
		if silent {
			s.streams.abort()
		}
	})
}

func (e *refEndpoint) notify() { // e.mu held
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *refEndpoint) serve() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.handle(c)
		}()
	}
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

func (e *refEndpoint) handle(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	kind, pass, ids, err := readHeader(c)
	if err != nil {
		c.Close()
		return
	}
	if subtle.ConstantTimeCompare([]byte(pass), []byte(e.cfg.Passcode)) != 1 && e.fault != "nopasscode" {
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
	switch kind {
	case kindControl:
		if e.cfg.MaxLinks > 0 && len(e.sessions) >= e.cfg.MaxLinks && e.fault != "nolimit" {
			e.mu.Unlock()
			c.Write([]byte{statusLimit})
			c.Close()
			return
		}
		e.nextID++
		id := e.nextID
		s := &srvSession{ctrl: c, dead: make(chan struct{})}
		e.sessions[id] = s
		e.notify()
		e.mu.Unlock()
		var reply [9]byte
		binary.BigEndian.PutUint64(reply[1:], id)
		c.SetDeadline(time.Time{})
		if _, err := c.Write(reply[:]); err != nil {
			s.kill(false)
		} else if e.fault == "nothreshold" {
			// Agents are not told the threshold.
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
		st := s.streams.add(c)
		if kind == kindData {
			ch <- st // buffered
			return
		}
		select {
		case e.accepted <- st:
		default:
			st.Close() // nobody takes streams: refuse
		}
	default:
		e.mu.Unlock()
		c.Close()
	}
}

func (e *refEndpoint) control(id uint64, s *srvSession) {
	defer func() {
		e.mu.Lock()
		delete(e.sessions, id)
		e.notify()
		e.mu.Unlock()
	}()
	buf := make([]byte, 1)
	for {
		if e.fault != "noheartbeat" {
			s.ctrl.SetReadDeadline(time.Now().Add(e.cfg.HeartbeatThreshold))
		}
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

func (e *refEndpoint) Open(ctx context.Context) (net.Conn, error) {
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
		if o, ok := sdk.OriginFrom(ctx); ok {
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

func (e *refEndpoint) Accept(ctx context.Context) (net.Conn, error) {
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

func (e *refEndpoint) Close() error {
	e.once.Do(func() {
		e.mu.Lock()
		close(e.closed)
		sessions := make([]*srvSession, 0, len(e.sessions))
		for _, s := range e.sessions {
			sessions = append(sessions, s)
		}
		e.mu.Unlock()
		if e.fault == "leak" {
			return // leaves the listener and its goroutine behind
		}
		e.ln.Close()
		for _, s := range sessions {
			s.kill(false)
		}
	})
	if e.fault != "leak" {
		e.wg.Wait()
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

func (e *refEndpoint) Stats() sdk.EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sdk.EndpointStats{Links: len(e.sessions)}
}

// The agent half.

func (t Transport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &refSession{cfg: cfg, accepted: make(chan net.Conn, 64), done: make(chan struct{}), retime: make(chan struct{}, 1)}
	c, reply, err := s.connect(ctx, kindControl, 8)
	if err != nil {
		return nil, err
	}
	s.ctrl, s.id = c, binary.BigEndian.Uint64(reply)
	s.wg.Add(2)
	go s.read()
	go s.beat()
	return s, nil
}

type refSession struct {
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
func (s *refSession) HeartbeatThreshold() time.Duration { return time.Duration(s.told.Load()) }

func (s *refSession) threshold() time.Duration {
	switch {
	case s.cfg.HeartbeatThreshold > 0:
		return s.cfg.HeartbeatThreshold
	case s.told.Load() > 0:
		return time.Duration(s.told.Load())
	}
	return sdk.DefaultHeartbeatThreshold
}

func (s *refSession) interval() time.Duration {
	return beatInterval(time.Duration(s.told.Load()), s.cfg.HeartbeatInterval)
}

// connect dials one connection of kind and reads the status (and extra
// reply bytes), all bounded by ctx.
func (s *refSession) connect(ctx context.Context, kind byte, extra int, ids ...uint64) (net.Conn, []byte, error) {
	c, err := new(net.Dialer).DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("ref: dial: %w", err)
	}
	if s.cfg.TLS != nil {
		tc := s.cfg.TLS
		if tc.ServerName == "" { // as tls.Dial does
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(s.cfg.Addr)
		}
		c = tls.Client(c, tc)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hdr := append([]byte("REF1"), kind, byte(len(s.cfg.Passcode)))
	hdr = append(hdr, s.cfg.Passcode...)
	for _, id := range ids {
		hdr = binary.BigEndian.AppendUint64(hdr, id)
	}
	reply := make([]byte, 1+extra)
	if _, err = c.Write(hdr); err == nil {
		_, err = io.ReadFull(c, reply[:1])
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
		return nil, nil, fmt.Errorf("ref: handshake: %w", err)
	}
	switch reply[0] {
	case statusOK:
		return c, reply[1:], nil
	case statusBadPass:
		err = sdk.ErrBadPasscode
	case statusLimit:
		err = sdk.ErrLinkLimit
	default:
		err = fmt.Errorf("ref: refused with status %d", reply[0])
	}
	c.Close()
	return nil, nil, err
}

func (s *refSession) fail(err error, silent bool) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		s.ctrl.Close()
		if silent {
			s.streams.abort()
		}
	})
}

func (s *refSession) read() {
	defer s.wg.Done()
	for {
		s.ctrl.SetReadDeadline(time.Now().Add(s.threshold()))
		m, err := readMsg(s.ctrl)
		if err != nil {
			var ne net.Error
			silent := errors.As(err, &ne) && ne.Timeout()
			s.fail(fmt.Errorf("ref: session lost: %w", err), silent)
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

func (s *refSession) stream(id uint64, o sdk.Origin, hasOrigin bool) {
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
	st := s.streams.add(c)
	st.origin, st.hasOrigin = o, hasOrigin
	select {
	case s.accepted <- st:
	case <-s.done:
		st.Close()
	}
}

func (s *refSession) beat() {
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
				s.fail(fmt.Errorf("ref: heartbeat: %w", err), false)
				return
			}
		}
	}
}

func (s *refSession) Accept(ctx context.Context) (net.Conn, error) {
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

func (s *refSession) Open(ctx context.Context) (net.Conn, error) {
	select {
	case <-s.done:
		return nil, s.err
	default:
	}
	c, _, err := s.connect(ctx, kindOpen, 0, s.id)
	if err != nil {
		return nil, err
	}
	return s.streams.add(c), nil
}

func (s *refSession) Close() error {
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
	_ sdk.Endpoint      = (*refEndpoint)(nil)
	_ sdk.StatsReporter = (*refEndpoint)(nil)
	_ sdk.Session       = (*refSession)(nil)
)
