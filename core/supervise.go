package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
)

// Restart pacing of an endpoint or public port that stopped on its own.
const (
	restartMinDelay = 250 * time.Millisecond
	restartMaxDelay = 30 * time.Second
	restartListen   = 15 * time.Second // bound of one Listen call
)

// slot is one agent port of a mapping: the transport's endpoint, which
// the manager listens again (same config, same passcode) when it stops on
// its own ([sdk.Stopper]). The relay holds the slot, so it keeps working
// across restarts. Its methods are safe for concurrent use.
type slot struct {
	tr  sdk.Transport
	cfg sdk.EndpointConfig
	log *slog.Logger

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	cur      sdk.Endpoint  // nil while restarting
	changed  chan struct{} // closed and replaced when cur changes
	closed   bool
	err      error // why the endpoint is down, while it is
	restarts int
}

// newSlot wraps ep, listened by tr with cfg, and starts watching it.
func newSlot(tr sdk.Transport, cfg sdk.EndpointConfig, ep sdk.Endpoint, log *slog.Logger) *slot {
	ctx, cancel := context.WithCancel(context.Background())
	s := &slot{tr: tr, cfg: cfg, log: log, ctx: ctx, cancel: cancel, cur: ep, changed: make(chan struct{})}
	if _, ok := ep.(sdk.Stopper); ok {
		s.wg.Add(1)
		go s.supervise(ep)
	}
	return s
}

// supervise waits for ep to stop on its own, then closes it and listens
// again with backoff until it works or the slot is closed.
func (s *slot) supervise(ep sdk.Endpoint) {
	defer s.wg.Done()
	for {
		st, ok := ep.(sdk.Stopper)
		if !ok {
			return
		}
		select {
		case <-st.Done():
		case <-s.ctx.Done():
			return
		}
		cause := st.Err()
		if cause == nil || s.ctx.Err() != nil {
			return // closed, not stopped
		}
		s.log.Error("agent endpoint stopped accepting agents; listening it again", "err", cause)
		s.set(nil, cause)
		ep.Close()
		if ep = s.relisten(cause); ep == nil {
			return
		}
	}
}

// relisten listens the endpoint again until it works; nil once the slot
// is closed.
func (s *slot) relisten(cause error) sdk.Endpoint {
	delay := restartMinDelay
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return nil
		}
		lctx, cancel := context.WithTimeout(s.ctx, restartListen)
		ep, err := s.tr.Listen(lctx, s.cfg)
		cancel()
		if err == nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				ep.Close()
				return nil
			}
			s.set(ep, nil)
			s.log.Info("agent endpoint listening again", "attempts", attempt, "after_error", cause)
			return ep
		}
		if s.ctx.Err() != nil {
			return nil
		}
		s.set(nil, fmt.Errorf("%w; listening again failed (attempt %d): %v", cause, attempt, err))
		if attempt&(attempt-1) == 0 { // 1, 2, 4, 8...: a bounded trickle of lines
			s.log.Warn("listening an agent endpoint again failed; retrying", "attempt", attempt, "err", err)
		}
		delay = min(2*delay, restartMaxDelay)
	}
}

func (s *slot) set(ep sdk.Endpoint, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep != nil {
		s.restarts++
	}
	if ep != nil || s.cur != nil {
		s.cur = ep
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.err = err
}

// current waits for a live endpoint.
func (s *slot) current(ctx context.Context) (sdk.Endpoint, error) {
	for {
		s.mu.Lock()
		ep, ch, closed := s.cur, s.changed, s.closed
		s.mu.Unlock()
		switch {
		case closed:
			return nil, sdk.ErrClosed
		case ep != nil:
			return ep, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// replaced reports whether ep is no longer the slot's endpoint while the
// slot lives: a call that failed on it is tried on the next one.
func (s *slot) replaced(ep sdk.Endpoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && s.cur != ep
}

func (s *slot) call(ctx context.Context, f func(sdk.Endpoint) (net.Conn, error)) (net.Conn, error) {
	for {
		ep, err := s.current(ctx)
		if err != nil {
			return nil, err
		}
		c, err := f(ep)
		if err != nil && errors.Is(err, net.ErrClosed) && s.replaced(ep) {
			continue
		}
		return c, err
	}
}

// Open implements [sdk.Endpoint.Open] on the current endpoint.
func (s *slot) Open(ctx context.Context) (net.Conn, error) {
	return s.call(ctx, func(ep sdk.Endpoint) (net.Conn, error) { return ep.Open(ctx) })
}

// Accept implements [sdk.Endpoint.Accept] on the current endpoint.
func (s *slot) Accept(ctx context.Context) (net.Conn, error) {
	return s.call(ctx, func(ep sdk.Endpoint) (net.Conn, error) { return ep.Accept(ctx) })
}

// Close stops supervising and closes the current endpoint.
func (s *slot) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	ep := s.cur
	s.cur = nil
	s.mu.Unlock()
	if ep == nil {
		return nil
	}
	return ep.Close()
}

// Stats implements [sdk.StatsReporter]: the current endpoint's, zero while
// it restarts.
func (s *slot) Stats() sdk.EndpointStats {
	s.mu.Lock()
	ep := s.cur
	s.mu.Unlock()
	if r, ok := ep.(sdk.StatsReporter); ok {
		return r.Stats()
	}
	return sdk.EndpointStats{}
}

// StreamClosed implements [sdk.StreamObserver]: it tells the current
// endpoint, if it observes streams (one listened again ignores the streams
// of its predecessor).
func (s *slot) StreamClosed(c net.Conn) {
	s.mu.Lock()
	ep := s.cur
	s.mu.Unlock()
	if o, ok := ep.(sdk.StreamObserver); ok {
		o.StreamClosed(c)
	}
}

// health returns why the endpoint is down ("" when it serves) and how many
// times it was listened again.
func (s *slot) health() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err.Error(), s.restarts
	}
	return "", s.restarts
}

// publicListener is a public mapping's public port. When accepting fails
// for good (not a transient error such as EMFILE, which ServePublic
// retries), it closes the socket and listens on the same address again,
// with backoff, while Accept blocks; Close ends it. Its methods are safe
// for concurrent use, and Accept is called by one goroutine.
type publicListener struct {
	addr   string
	listen func(context.Context) (net.Listener, error)
	log    *slog.Logger
	ctx    context.Context // ends with Close
	cancel context.CancelFunc

	mu       sync.Mutex
	ln       net.Listener
	err      error // why the port is down, while it is
	restarts int
}

// relistening returns ln as a public port that is listened again on addr
// when it fails for good.
func (m *Manager) relistening(ln net.Listener, addr string, log *slog.Logger) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &publicListener{addr: addr, log: log, ctx: ctx, cancel: cancel, ln: ln,
		listen: func(ctx context.Context) (net.Listener, error) { return m.listenPublic(ctx, addr) }}
}

// Accept implements net.Listener.
func (p *publicListener) Accept() (net.Conn, error) {
	for {
		p.mu.Lock()
		ln := p.ln
		p.mu.Unlock()
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		if p.ctx.Err() != nil {
			return nil, net.ErrClosed
		}
		if admission.Transient(err) {
			return nil, err // the caller backs off
		}
		p.log.Error("public port stopped accepting clients; listening it again", "err", err)
		ln.Close()
		if !p.relisten(err) {
			return nil, net.ErrClosed
		}
	}
}

// relisten binds the address again until it works; false once closed.
func (p *publicListener) relisten(cause error) bool {
	p.set(nil, cause)
	delay := restartMinDelay
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return false
		}
		lctx, cancel := context.WithTimeout(p.ctx, restartListen)
		ln, err := p.listen(lctx)
		cancel()
		if err == nil {
			if !p.set(ln, nil) {
				ln.Close()
				return false
			}
			p.log.Info("public port listening again", "attempts", attempt, "after_error", cause)
			return true
		}
		if p.ctx.Err() != nil {
			return false
		}
		p.set(nil, fmt.Errorf("%w; listening again failed (attempt %d): %v", cause, attempt, err))
		if attempt&(attempt-1) == 0 { // 1, 2, 4, 8...
			p.log.Warn("listening a public port again failed; retrying", "attempt", attempt, "err", err)
		}
		delay = min(2*delay, restartMaxDelay)
	}
}

// set records a new socket (ln not nil) or why there is none; false when
// the listener is closed already.
func (p *publicListener) set(ln net.Listener, err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return false
	}
	if ln != nil {
		p.ln = ln
		p.restarts++
	}
	p.err = err
	return true
}

// Close implements net.Listener; it is idempotent.
func (p *publicListener) Close() error {
	p.cancel()
	p.mu.Lock()
	ln := p.ln
	p.mu.Unlock()
	return ln.Close()
}

// Addr implements net.Listener.
func (p *publicListener) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln.Addr()
}

// health returns why the port is down ("" when it serves) and how many
// times it was listened again.
func (p *publicListener) health() (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err.Error(), p.restarts
	}
	return "", p.restarts
}

// listenPublic binds a public port (TLS when the manager has TLS).
func (m *Manager) listenPublic(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("core: public port: %w", err)
	}
	if m.cfg.TLS != nil {
		ln = tls.NewListener(ln, m.cfg.TLS)
	}
	return ln, nil
}

var (
	_ sdk.Endpoint       = (*slot)(nil)
	_ sdk.StatsReporter  = (*slot)(nil)
	_ sdk.StreamObserver = (*slot)(nil)
	_ net.Listener       = (*publicListener)(nil)
)
