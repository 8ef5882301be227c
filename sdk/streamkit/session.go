package streamkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// errUnanswered is a connection the connector closed before answering: a
// connector of an earlier release does that to kindControlOrigins.
var errUnanswered = errors.New("the connector closed the connection unanswered")

// session is the agent half: one control connection and its streams.
type session struct {
	t        *Transport
	cfg      sdk.DialConfig // as given: zero timings mean "not set"
	log      *slog.Logger
	ctrl     net.Conn
	id       uint64
	wmu      sync.Mutex
	accepted chan net.Conn
	ctx      context.Context // cancelled when the session ends
	cancel   context.CancelFunc
	once     sync.Once
	err      error
	wg       sync.WaitGroup
	streams  streamSet
	told     atomic.Int64  // the connector's threshold, ns; 0 until told
	retime   chan struct{} // wakes beat when told changes

	imu        sync.Mutex
	idle       map[net.Conn]struct{} // idle links waiting for a bind
	idleClosed bool                  // set by fail
}

func dial(ctx context.Context, t *Transport, cfg sdk.DialConfig) (*session, error) {
	s := &session{t: t, cfg: cfg, log: sdk.Logger(cfg.Logger), accepted: make(chan net.Conn, 64), retime: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	c, reply, err := s.connect(ctx, kindControlOrigins, 8)
	if errors.Is(err, errUnanswered) && ctx.Err() == nil {
		s.log.Debug("the connector does not know origins; dialling again without them")
		c, reply, err = s.connect(ctx, kindControl, 8)
	}
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.ctrl, s.id = c, binary.BigEndian.Uint64(reply)
	s.wg.Add(2)
	go s.read()
	go s.beat()
	for range max(t.cfg.IdleLinks, 0) {
		s.wg.Go(s.keepIdle)
	}
	return s, nil
}

// HeartbeatThreshold returns the threshold the connector told, or zero
// (sdk/plugin's ThresholdReporter).
func (s *session) HeartbeatThreshold() time.Duration { return time.Duration(s.told.Load()) }

// threshold is how long the session waits to hear from the connector:
// its own, or the one it was told, or the default.
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
	return BeatInterval(time.Duration(s.told.Load()), s.cfg.HeartbeatInterval)
}

// connect dials one carrier connection of kind and runs the handshake:
// the status and extra reply bytes, all bounded by ctx.
func (s *session) connect(ctx context.Context, kind byte, extra int, ids ...uint64) (net.Conn, []byte, error) {
	name := s.t.cfg.Name
	c, err := s.t.cfg.Dial(ctx, s.cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	reply := make([]byte, 1+extra)
	if _, err = c.Write(appendHeader(nil, kind, s.cfg.Passcode, ids...)); err == nil {
		if _, err = io.ReadFull(c, reply[:1]); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
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
		return nil, nil, fmt.Errorf("%s: handshake: %w", name, err)
	}
	switch reply[0] {
	case statusOK:
		return c, reply[1:], nil
	case statusBadPass:
		err = sdk.ErrBadPasscode
	case statusLimit:
		err = sdk.ErrLinkLimit
	default:
		err = fmt.Errorf("%s: refused with status %d", name, reply[0])
	}
	c.Close()
	return nil, nil, err
}

// fail ends the session; silent (the connector stopped answering) aborts
// its streams too.
func (s *session) fail(err error, silent bool) {
	s.once.Do(func() {
		s.err = err
		s.cancel()
		s.ctrl.Close()
		s.imu.Lock()
		for c := range s.idle {
			c.Close()
		}
		s.idle, s.idleClosed = nil, true
		s.imu.Unlock()
		if silent {
			s.streams.abort()
		}
	})
}

// read reads the control connection: stream requests, the threshold and
// signs of life.
func (s *session) read() {
	defer s.wg.Done()
	for {
		s.ctrl.SetReadDeadline(time.Now().Add(s.threshold()))
		m, err := readMsg(s.ctrl)
		if err != nil {
			var ne net.Error
			silent := errors.As(err, &ne) && ne.Timeout()
			s.fail(fmt.Errorf("%s: session lost: %w", s.t.cfg.Name, err), silent)
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

// stream dials the connection of the stream the connector asked for and
// queues it for Accept.
func (s *session) stream(id uint64, o sdk.Origin, hasOrigin bool) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, handshakeTimeout)
	defer cancel()
	c, _, err := s.connect(ctx, kindData, 0, s.id, id)
	if err != nil {
		s.log.Debug("dialling a stream the connector asked for failed", "err", err)
		return
	}
	st := s.streams.add(c)
	st.origin, st.hasOrigin = o, hasOrigin
	select {
	case s.accepted <- st:
	case <-s.ctx.Done():
		st.Close()
	}
}

// keepIdle keeps one idle link dialled: it waits on it for a bind,
// hands the bound stream to Accept and dials the next. It gives up for
// good when the connector does not know idle links (an earlier
// release), and backs off while dialling fails.
func (s *session) keepIdle() {
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		c, err := s.idleLink()
		if errors.Is(err, errUnanswered) {
			s.log.Debug("the connector keeps no idle links; streams are dialled on request")
			return
		}
		if err != nil {
			s.log.Debug("dialling an idle link failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		m, err := readMsg(c) // no deadline: the session's end closes it
		s.imu.Lock()
		delete(s.idle, c)
		s.imu.Unlock()
		if err != nil || (m.kind != 'P' && m.kind != 'Q') {
			c.Close()
			continue // the connector closed it (or broke the protocol): dial another
		}
		if _, err := c.Write([]byte{statusOK}); err != nil {
			c.Close()
			continue
		}
		backoff = 100 * time.Millisecond
		st := s.streams.add(c)
		st.origin, st.hasOrigin = m.origin, m.kind == 'Q'
		select {
		case s.accepted <- st:
		case <-s.ctx.Done():
			st.Close()
			return
		}
	}
}

// idleLink dials one idle link: its header, then (once answered) the
// session id, and holds it in s.idle.
func (s *session) idleLink() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, handshakeTimeout)
	defer cancel()
	c, _, err := s.connect(ctx, kindIdle, 0)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var st [1]byte
	_, err = c.Write(binary.BigEndian.AppendUint64(nil, s.id))
	if err == nil {
		_, err = io.ReadFull(c, st[:])
	}
	if err == nil && st[0] != statusOK {
		err = fmt.Errorf("%s: idle link refused with status %d", s.t.cfg.Name, st[0])
	}
	if err == nil && !stop() {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	s.imu.Lock()
	defer s.imu.Unlock()
	if s.idleClosed {
		c.Close()
		return nil, sdk.ErrClosed
	}
	if s.idle == nil {
		s.idle = map[net.Conn]struct{}{}
	}
	s.idle[c] = struct{}{}
	return c, nil
}

// beat writes 'B' every interval.
func (s *session) beat() {
	defer s.wg.Done()
	every := s.interval()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.retime:
			if now := s.interval(); now != every {
				every = now
				t.Reset(every)
			}
		case <-t.C:
			s.wmu.Lock()
			_, err := s.ctrl.Write([]byte{'B'})
			s.wmu.Unlock()
			if err != nil {
				s.fail(fmt.Errorf("%s: heartbeat: %w", s.t.cfg.Name, err), false)
				return
			}
		}
	}
}

// Accept implements [sdk.Session].
func (s *session) Accept(ctx context.Context) (net.Conn, error) {
	if s.ctx.Err() != nil {
		return nil, s.err
	}
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.ctx.Done():
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Open implements [sdk.Session]: a carrier connection of its own.
func (s *session) Open(ctx context.Context) (net.Conn, error) {
	if s.ctx.Err() != nil {
		return nil, s.err
	}
	c, _, err := s.connect(ctx, kindOpen, 0, s.id)
	if err != nil {
		return nil, err
	}
	return s.streams.add(c), nil
}

// Close implements [sdk.Session]: streams handed out stay open.
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

var _ sdk.Session = (*session)(nil)
