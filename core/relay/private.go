package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// Endpoint is the part of an sdk.Endpoint a private pipe needs.
type Endpoint interface {
	Opener
	Accept(ctx context.Context) (net.Conn, error)
}

// ServePrivate joins the two sides of a private pipe. Every stream an agent
// starts on one side (Accept) is paired with the first of: a stream another
// agent started on the other side (two legacy links pair this way), or a
// stream opened toward an agent on the other side (Open).
//
// ServePrivate returns nil once ctx is cancelled, after closing every
// stream it holds and waiting for its goroutines. It does not close the
// endpoints. Transient Accept errors (a plugin restarting) are retried with
// backoff; an endpoint that reports net.ErrClosed ends its side.
//
// Each side holds at most its PrivateConfig.Limits streams at once: a
// stream an agent starts beyond it is closed at once, counted and logged
// in aggregate, and a waiting stream's partner is opened only once the
// other side has a free place.
func ServePrivate(ctx context.Context, ep1, ep2 Endpoint, cfg PrivateConfig) error {
	ctx, cancel := context.WithCancel(ctx)
	log := sdk.Logger(cfg.Logger)
	p := &pairer{
		ctx:     ctx,
		eps:     [2]Endpoint{ep1, ep2},
		cfg:     &cfg,
		log:     log,
		wait:    [2][]*waiter{},
		refused: admission.NewTally(admission.TallyConfig{Logger: log, Message: "private streams refused"}),
	}
	defer p.refused.Close()
	for side := range 2 {
		p.wg.Add(1)
		go p.acceptLoop(side)
	}
	<-ctx.Done()
	cancel()
	p.wg.Wait()
	p.closeWaiting()
	return nil
}

// pairer matches streams across the two sides of a private pipe.
type pairer struct {
	ctx  context.Context
	eps  [2]Endpoint
	cfg  *PrivateConfig
	log  *slog.Logger
	wg   sync.WaitGroup
	mu   sync.Mutex
	wait [2][]*waiter // streams from Accept waiting for a partner, per side
	// refused logs the streams closed at a side's limit, in aggregate.
	refused *admission.Tally
}

// goner is implemented by streams that can tell that their agent is gone
// (closed, reset or silent past its heartbeat threshold) while they wait
// for a partner, such as the tcp transport's legacy links.
type goner interface {
	Gone() <-chan struct{}
}

// gone reports whether c is known to have lost its agent: it says so, or
// it is a socket its transport already closed (the tcp transport closes
// the streams of an agent that died or froze).
func gone(c net.Conn) bool {
	if g, ok := c.(goner); ok {
		select {
		case <-g.Gone():
			return true
		default:
		}
	}
	if sc, ok := c.(syscall.Conn); ok {
		rc, err := sc.SyscallConn()
		return err != nil || rc.Control(func(uintptr) {}) != nil
	}
	return false
}

// waiter is a stream waiting for a partner from the other side.
type waiter struct {
	conn    *held
	cancel  context.CancelFunc // stops its Open on the other side
	claimed bool               // guarded by pairer.mu
}

func (p *pairer) acceptLoop(side int) {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		s, err := p.eps[side].Accept(p.ctx)
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = nextBackoff(backoff)
			p.log.Warn("private accept failed; retrying", sdk.AttrSide, side+1, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-p.ctx.Done():
				return
			}
		}
		backoff = 0
		if !p.admit(side) {
			p.refuse(side, s)
			continue
		}
		p.arrive(side, hold(s, p.eps[side], p.cfg.Limits[side]))
	}
}

// admit takes a place for a stream that arrived on side. At the limit it
// first drops the waiting streams of side whose agent is gone (a
// restarted legacy agent links again before its old link's waiter was
// dropped), then tries again.
func (p *pairer) admit(side int) bool {
	limit := p.cfg.Limits[side]
	if limit.tryAcquire() {
		return true
	}
	p.mu.Lock()
	var dead []*waiter
	for _, w := range p.wait[side] {
		if !w.claimed && gone(w.conn.Conn) {
			w.claimed = true
			dead = append(dead, w)
		}
	}
	for _, w := range dead {
		p.removeLocked(side, w)
	}
	p.mu.Unlock()
	for _, w := range dead {
		p.drop(side, w)
	}
	return limit.tryAcquire()
}

// refuse closes s, a stream that arrived on side at its limit.
func (p *pairer) refuse(side int, s net.Conn) {
	hold(s, p.eps[side], nil).Close()
	p.cfg.Counters.refuse(atLimit)
	name := "maxconnectionsport" + strconv.Itoa(side+1)
	p.log.Debug("private stream closed: its side holds its maxconnections streams", sdk.AttrSide, side+1, name, p.cfg.Limits[side].Max())
	p.refused.Add(admission.Source(s.RemoteAddr()), fmt.Sprintf("side %d holds its %s of %d streams", side+1, name, p.cfg.Limits[side].Max()))
}

// arrive pairs s, which came from Accept on side, or makes it wait.
func (p *pairer) arrive(side int, s *held) {
	other := 1 - side
	p.mu.Lock()
	for len(p.wait[other]) > 0 {
		w := p.wait[other][0]
		p.wait[other] = p.wait[other][1:]
		w.claimed = true
		if gone(w.conn.Conn) {
			// Its agent died while it waited: never pair with it.
			p.mu.Unlock()
			p.drop(other, w)
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		w.cancel()
		p.join(side, s, w.conn)
		return
	}
	wctx, wcancel := context.WithCancel(p.ctx)
	w := &waiter{conn: s, cancel: wcancel}
	p.wait[side] = append(p.wait[side], w)
	p.mu.Unlock()

	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer wcancel()
		p.openFor(wctx, side, w)
	}()
	if g, ok := s.Conn.(goner); ok {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			select {
			case <-g.Gone():
			case <-wctx.Done():
				return
			}
			p.mu.Lock()
			if w.claimed {
				p.mu.Unlock()
				return
			}
			w.claimed = true
			p.removeLocked(side, w)
			p.mu.Unlock()
			p.drop(side, w)
		}()
	}
}

// drop closes a claimed waiter whose agent is gone, so that its place is
// freed and the restarted agent can link again.
func (p *pairer) drop(side int, w *waiter) {
	w.cancel()
	w.conn.Close()
	p.log.Info("private stream dropped: its agent went away while it waited for a partner", sdk.AttrSide, side+1)
}

// openFor opens a stream on the other side for w, unless w is claimed by a
// stream arriving there first.
func (p *pairer) openFor(ctx context.Context, side int, w *waiter) {
	other := 1 - side
	limit := p.cfg.Limits[other]
	var backoff time.Duration
	for {
		// Open only while the other side has a free place, but take it
		// only once the stream is there: a pending Open must not hold a
		// place that a stream arriving on that side (which would pair
		// with w just as well) needs.
		if limit.waitFree(ctx) != nil {
			return
		}
		raw, err := p.eps[other].Open(ctx)
		p.mu.Lock()
		if w.claimed || p.ctx.Err() != nil {
			p.mu.Unlock()
			if raw != nil {
				hold(raw, p.eps[other], nil).Close()
			}
			return
		}
		if err == nil && !limit.tryAcquire() {
			// A stream arrived on that side meanwhile and took the
			// last place: give this one back and wait again.
			p.mu.Unlock()
			hold(raw, p.eps[other], nil).Close()
			p.log.Debug("private open raced with a stream at the limit; waiting for a place", sdk.AttrSide, other+1)
			continue
		}
		if err == nil {
			o := hold(raw, p.eps[other], limit)
			w.claimed = true
			p.removeLocked(side, w)
			p.mu.Unlock()
			if gone(w.conn.Conn) {
				o.Close()
				p.drop(side, w)
				return
			}
			p.join(side, w.conn, o)
			return
		}
		p.mu.Unlock()
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return
		}
		backoff = nextBackoff(backoff)
		p.log.Debug("private open failed; retrying", sdk.AttrSide, other+1, "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
	}
}

func (p *pairer) removeLocked(side int, w *waiter) {
	q := p.wait[side]
	for i, x := range q {
		if x == w {
			p.wait[side] = append(q[:i], q[i+1:]...)
			return
		}
	}
}

// join relays s (from side) and its partner, keeping side 1 as pipe's a.
// The pipe gets the streams themselves, so that sockets keep splice.
func (p *pairer) join(side int, s, partner *held) {
	a, b := s, partner
	if side == 1 {
		a, b = partner, s
	}
	p.wg.Add(1)
	p.cfg.Counters.begin()
	// An idle relay holds no goroutine: the pipe calls back at its end.
	pipe.Start(p.ctx, a.Conn, b.Conn, p.cfg.Counters.pipeOptions(p.cfg.IdleTimeout), func(_ pipe.Result, err error) {
		p.cfg.Counters.end()
		a.done() // the pipe closed both
		b.done()
		if err != nil {
			p.log.Debug("private relay ended with an error", "err", err)
		}
		p.wg.Done()
	})
}

func (p *pairer) closeWaiting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for side := range 2 {
		for _, w := range p.wait[side] {
			w.conn.Close()
		}
		p.wait[side] = nil
	}
}
