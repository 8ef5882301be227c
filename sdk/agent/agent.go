package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/pipe"
	"github.com/iofog/iofog-connector/sdk/proxyproto"
)

// DefaultPool is how many links [RunPublic] keeps ready when
// PublicConfig.Pool is zero and the transport carries one stream per
// link. For a multiplexing transport ([sdk.Multiplexer]) the default is
// one session.
const DefaultPool = 8

// defaultPool is the pool size used when a config leaves it at zero.
func defaultPool(t sdk.Transport, oneStream int) int {
	if m, ok := t.(sdk.Multiplexer); ok && m.Multiplexed() {
		return 1
	}
	return oneStream
}

// PublicConfig configures [RunPublic].
type PublicConfig struct {
	// Dial reaches the connector: its agent port (Addr), the mapping's
	// passcode, TLS (nil means plain, the connector's dev mode) and
	// heartbeat timings. Dial.Logger is ignored; Logger is used.
	Dial sdk.DialConfig
	// Local is the host:port of the service to expose. Required.
	Local string
	// Pool is how many links wait for public clients at once (for a
	// multiplexing transport: how many sessions are kept, each carrying
	// any number of clients); a client that arrives while all links are
	// busy waits at the connector. Zero means DefaultPool, or 1 for a
	// multiplexing transport.
	Pool int
	// MaxPool is how far the pool of a transport that makes one
	// connection per stream (tcp's) grows under demand: a link that a
	// client took within 100 ms (or three times the quickest) of the
	// agent asking for it, dial and handshake included, adds a link, up to MaxPool, and each link
	// added is dropped again once it waited PoolIdle without a client.
	// Over a long round trip a pool of Pool links refills at most Pool
	// links per two round trips; growth lifts that bound while clients
	// queue. Zero, or anything up to Pool, means Pool: no growth (the
	// connector then sees exactly Pool idle links at rest, as operators
	// expect from --pool).
	MaxPool int
	// PoolIdle is how long a link added under demand waits for a client
	// before it is dropped. Zero means DefaultPoolIdle.
	PoolIdle time.Duration
	// LocalDialTimeout bounds each dial of the local service. Zero means
	// 10 seconds.
	LocalDialTimeout time.Duration
	// MinBackoff is the first delay before reconnecting after a failure;
	// it doubles (with jitter) up to MaxBackoff. Zero means
	// DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the reconnect delay. Zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Logger receives the agent's logs. Nil means discard.
	Logger *slog.Logger
}

// PrivateConfig configures [RunPrivate]. Exactly one of Local and Listen
// is set.
type PrivateConfig struct {
	// Dial reaches the connector, as in [PublicConfig].
	Dial sdk.DialConfig
	// Local, when set, is the host:port of a service dialled for each
	// stream the other side of the pipe starts.
	Local string
	// Listen, when set, is a host:port to listen on locally; each local
	// connection accepted there is carried over a new stream to the other
	// side of the pipe.
	Listen string
	// Ready, when not nil, is called once with the bound address of the
	// Listen socket (useful with port 0). Ignored with Local.
	Ready func(net.Addr)
	// Pool is how many links (sessions, for a multiplexing transport)
	// wait for streams in Local mode. Zero means 1.
	Pool int
	// OpenTimeout bounds how long a local connection waits for its stream
	// in Listen mode (retrying with backoff) before it is closed. Zero
	// means 10 seconds.
	OpenTimeout time.Duration
	// LocalDialTimeout bounds each dial of the local service. Zero means
	// 10 seconds.
	LocalDialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay, as in
	// [PublicConfig].
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the agent's logs. Nil means discard.
	Logger *slog.Logger
}

// RunPublic serves a public mapping's agent port with t until ctx is
// done: it keeps cfg.Pool links ready and relays each client the connector
// binds to one to a new connection to cfg.Local. Failures (connector
// unreachable, passcode refused, link limit reached) are logged and
// retried with exponential backoff and jitter.
//
// RunPublic returns nil after ctx is cancelled and every relay has ended,
// or an error wrapping [sdk.ErrInvalidConfig] at once if cfg is invalid.
func RunPublic(ctx context.Context, t sdk.Transport, cfg PublicConfig) error {
	if cfg.Local == "" {
		return fmt.Errorf("agent: %w: Local is empty", sdk.ErrInvalidConfig)
	}
	if cfg.Pool < 0 {
		return fmt.Errorf("agent: %w: Pool %d is negative", sdk.ErrInvalidConfig, cfg.Pool)
	}
	if cfg.Pool == 0 {
		cfg.Pool = defaultPool(t, DefaultPool)
	}
	r, err := newRunner(t, cfg.Dial, cfg.Logger, cfg.MinBackoff, cfg.MaxBackoff, cfg.LocalDialTimeout)
	if err != nil {
		return err
	}
	r.log = r.log.With("mode", "public", "local", cfg.Local)
	r.maxPool = max(cfg.MaxPool, cfg.Pool)
	r.poolIdle = cfg.PoolIdle
	if r.poolIdle <= 0 {
		r.poolIdle = DefaultPoolIdle
	}
	return r.serveLocal(ctx, cfg.Local, cfg.Pool)
}

// RunPrivate serves one side of a private mapping with t until ctx is
// done. With cfg.Local it dials the local service for every stream the
// other side starts; with cfg.Listen it listens locally and carries each
// accepted connection over a new stream. Failures are logged and retried
// with exponential backoff and jitter.
//
// RunPrivate returns nil after ctx is cancelled and every relay has ended,
// an error wrapping [sdk.ErrInvalidConfig] if cfg is invalid, or the error
// of listening on cfg.Listen.
func RunPrivate(ctx context.Context, t sdk.Transport, cfg PrivateConfig) error {
	if (cfg.Local == "") == (cfg.Listen == "") {
		return fmt.Errorf("agent: %w: exactly one of Local and Listen must be set", sdk.ErrInvalidConfig)
	}
	if cfg.Pool < 0 {
		return fmt.Errorf("agent: %w: Pool %d is negative", sdk.ErrInvalidConfig, cfg.Pool)
	}
	if cfg.Pool == 0 {
		cfg.Pool = 1
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 10 * time.Second
	}
	r, err := newRunner(t, cfg.Dial, cfg.Logger, cfg.MinBackoff, cfg.MaxBackoff, cfg.LocalDialTimeout)
	if err != nil {
		return err
	}
	if cfg.Local != "" {
		r.log = r.log.With("mode", "private", "local", cfg.Local)
		return r.serveLocal(ctx, cfg.Local, cfg.Pool)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: listen: %w", err)
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	r.log = r.log.With("mode", "private", "listen", ln.Addr().String())
	return r.serveListen(ctx, ln, cfg.OpenTimeout)
}

// runner holds what both modes share: the transport, the current session
// and the relays in flight.
type runner struct {
	t           sdk.Transport
	dial        sdk.DialConfig
	log         *slog.Logger
	lo, hi      time.Duration
	dialTimeout time.Duration
	retries     *retryLog // shared by the workers of a pool
	wg          sync.WaitGroup
	// maxPool bounds the workers of a shared lazy session (serveLocal);
	// 0 means no growth.
	maxPool  int
	poolIdle time.Duration // see PublicConfig.PoolIdle
	workers  atomic.Int32  // workers running on a shared session
	quickest atomic.Int64  // the quickest Accept on it, in nanoseconds

	mu   sync.Mutex
	sess sdk.Session
}

func newRunner(t sdk.Transport, dial sdk.DialConfig, log *slog.Logger, lo, hi, dialTimeout time.Duration) (*runner, error) {
	if t == nil {
		return nil, fmt.Errorf("agent: %w: no transport", sdk.ErrInvalidConfig)
	}
	if err := dial.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if lo < 0 || hi < 0 {
		return nil, fmt.Errorf("agent: %w: negative backoff", sdk.ErrInvalidConfig)
	}
	if dialTimeout <= 0 {
		dialTimeout = 10 * time.Second
	}
	log = sdk.Logger(log).With(sdk.AttrTransport, t.Name(), sdk.AttrPeer, dial.Addr)
	dial.Logger = log
	return &runner{t: t, dial: dial, log: log, lo: lo, hi: hi, dialTimeout: dialTimeout, retries: newRetryLog(log)}, nil
}

// session returns the current session, dialling one (with backoff) when
// there is none. It fails only when ctx is done.
func (r *runner) session(ctx context.Context) (sdk.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := newBackoff(r.lo, r.hi)
	failed := false
	for r.sess == nil {
		s, err := r.t.Dial(ctx, r.dial)
		if err == nil {
			r.sess = s
			if failed {
				r.retries.ok(ctx)
			}
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		failed = true
		r.retries.failed(ctx, slog.LevelWarn, "connecting to the connector failed; retrying", err)
		if !b.wait(ctx) {
			return nil, ctx.Err()
		}
	}
	return r.sess, nil
}

// drop closes s and forgets it if it is still current, so that the next
// call to session dials anew.
func (r *runner) drop(s sdk.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sess == s {
		r.sess = nil
		s.Close()
	}
}

func (r *runner) closeSession() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sess != nil {
		r.sess.Close()
		r.sess = nil
	}
}

// lazySession is implemented by sessions that make one network
// connection per stream and so never fail as a whole (tcp's): an error
// from their Accept or Open concerns one link, and the session is kept.
// Any other session is dropped and dialled anew after an error.
type lazySession interface {
	Lazy() bool
}

// sessionDead reports whether err from s means s must be dialled anew.
func sessionDead(s sdk.Session, err error) bool {
	if l, ok := s.(lazySession); ok && l.Lazy() {
		return errors.Is(err, sdk.ErrClosed)
	}
	return true
}

// Pool growth of a lazy session (see PublicConfig.MaxPool).
const (
	// hotAccept: a link bound this soon after Accept was called (dial and
	// handshake included) means clients are waiting for links.
	hotAccept = 100 * time.Millisecond
	// DefaultPoolIdle is PublicConfig.PoolIdle's default.
	DefaultPoolIdle = 10 * time.Second
)

// serveLocal runs pool workers that accept streams and relay each to a
// new connection to local. For a lazy session (one connection per
// stream, tcp's) the workers share one session, whose links share one
// liveness (control) link, and the pool grows under demand; otherwise
// each worker has a session of its own, so for a multiplexing transport
// pool is the number of sessions kept.
func (r *runner) serveLocal(ctx context.Context, local string, pool int) error {
	r.log.Info("agent started", "pool", pool)
	s, err := r.session(ctx)
	if err != nil {
		r.log.Info("agent stopped")
		return nil
	}
	if l, ok := s.(lazySession); ok && l.Lazy() {
		r.serveShared(ctx, local, pool)
		r.log.Info("agent stopped")
		return nil
	}
	var workers sync.WaitGroup
	for i := range pool {
		w := r // the first worker keeps the session just dialled
		if i > 0 {
			w = r.worker()
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			w.acceptLoop(ctx, local)
			w.closeSession()
			w.wg.Wait()
		}()
	}
	workers.Wait()
	r.log.Info("agent stopped")
	return nil
}

// serveShared runs pool workers on r's one lazy session, and up to
// r.maxPool-pool more while clients take links as fast as they come.
func (r *runner) serveShared(ctx context.Context, local string, pool int) {
	var workers sync.WaitGroup
	var spawn func(extra bool)
	// spawn starts a worker whose place in r.workers is taken.
	spawn = func(extra bool) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			defer r.workers.Add(-1)
			r.acceptLoopShared(ctx, local, extra, spawn)
		}()
	}
	for range pool {
		r.workers.Add(1)
		spawn(false)
	}
	workers.Wait()
	r.closeSession()
	r.wg.Wait()
}

// acceptLoopShared is acceptLoop for a worker of a shared lazy session.
// Each hot accept (a link bound within hotAccept) asks for one more
// worker while there are fewer than r.maxPool; an extra worker ends after
// a link waited r.poolIdle unbound, or after any failure.
func (r *runner) acceptLoopShared(ctx context.Context, local string, extra bool, spawn func(extra bool)) {
	b := newBackoff(r.lo, r.hi)
	for {
		s, err := r.session(ctx)
		if err != nil {
			return
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if extra {
			actx, cancel = context.WithTimeout(ctx, r.poolIdle)
		}
		t0 := time.Now()
		stream, err := s.Accept(actx)
		hot := err == nil && r.hot(time.Since(t0))
		cancel()
		if ctx.Err() != nil {
			if stream != nil {
				stream.Close()
			}
			return
		}
		if err != nil {
			if extra {
				return // cooled down, or the connector pushes back
			}
			r.acceptFailed(ctx, s, err, b)
			if !b.wait(ctx) {
				return
			}
			continue
		}
		b.reset()
		r.retries.ok(ctx)
		if hot && r.grow() {
			spawn(true)
		}
		r.wg.Add(1)
		go r.relayToLocal(ctx, stream, local, r.wg.Done)
	}
}

// hot reports whether an Accept that took d found a client waiting: d
// is under hotAccept, or under three times the quickest Accept seen (a
// dial and a handshake, over a long round trip).
func (r *runner) hot(d time.Duration) bool {
	for {
		q := r.quickest.Load()
		if q != 0 && int64(d) >= q {
			break
		}
		if r.quickest.CompareAndSwap(q, int64(d)) {
			break
		}
	}
	return d < max(hotAccept, 3*time.Duration(r.quickest.Load()))
}

// grow takes a place for one more worker of a shared session, and
// reports false when r.maxPool workers run.
func (r *runner) grow() bool {
	for {
		n := r.workers.Load()
		if int(n) >= r.maxPool {
			return false
		}
		if r.workers.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acceptFailed logs a failed Accept on s, drops s if it is dead, and
// resets b when the connector's link limit was reached.
func (r *runner) acceptFailed(ctx context.Context, s sdk.Session, err error, b *backoff) {
	lvl := slog.LevelWarn
	if errors.Is(err, sdk.ErrBadPasscode) || errors.Is(err, sdk.ErrIncompatible) {
		lvl = slog.LevelError
	}
	r.retries.failed(ctx, lvl, "agent link failed; retrying", err)
	if sessionDead(s, err) {
		r.drop(s)
	}
	if errors.Is(err, sdk.ErrLinkLimit) {
		// A place frees as soon as a stream ends: poll at the
		// first delay rather than backing off to the cap.
		b.reset()
	}
}

// worker returns a runner with r's settings and a session of its own.
func (r *runner) worker() *runner {
	return &runner{t: r.t, dial: r.dial, log: r.log, lo: r.lo, hi: r.hi, dialTimeout: r.dialTimeout, retries: r.retries}
}

func (r *runner) acceptLoop(ctx context.Context, local string) {
	b := newBackoff(r.lo, r.hi)
	for {
		s, err := r.session(ctx)
		if err != nil {
			return
		}
		stream, err := s.Accept(ctx)
		if ctx.Err() != nil {
			if stream != nil {
				stream.Close()
			}
			return
		}
		if err != nil {
			r.acceptFailed(ctx, s, err, b)
			if !b.wait(ctx) {
				return
			}
			continue
		}
		b.reset()
		r.retries.ok(ctx)
		r.wg.Add(1)
		go r.relayToLocal(ctx, stream, local, r.wg.Done)
	}
}

// relayToLocal dials local for stream and joins them. finish runs once
// both are closed: the relay outlives relayToLocal and, between sockets,
// holds no goroutine while idle.
func (r *runner) relayToLocal(ctx context.Context, stream net.Conn, local string, finish func()) {
	d := net.Dialer{Timeout: r.dialTimeout}
	lc, err := d.DialContext(ctx, "tcp", local)
	if err != nil {
		stream.Close()
		r.log.Warn("dialling the local service failed; closing the stream", "err", err)
		finish()
		return
	}
	stream, err = r.writeProxyHeader(stream, lc)
	if err != nil {
		stream.Close()
		lc.Close()
		r.log.Warn("writing the PROXY protocol header to the local service failed; closing the stream", "err", err)
		finish()
		return
	}
	pipe.Start(ctx, stream, lc, pipe.Options{}, func(res pipe.Result, err error) {
		r.log.Debug("stream ended", "to_local", res.AToB, "from_local", res.BToA, "err", err)
		finish()
	})
}

// serveListen carries each local connection accepted on ln over a new
// stream.
func (r *runner) serveListen(ctx context.Context, ln net.Listener, openTimeout time.Duration) error {
	r.log.Info("agent started")
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	b := newBackoff(r.lo, r.hi)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			r.log.Warn("local accept failed; retrying", "err", err)
			if !b.wait(ctx) {
				break
			}
			continue
		}
		b.reset()
		r.wg.Add(1)
		go r.carry(ctx, c, openTimeout, r.wg.Done)
	}
	ln.Close()
	r.wg.Wait()
	r.closeSession()
	r.log.Info("agent stopped")
	return nil
}

// carry opens a stream for the local connection c, retrying within
// openTimeout, and joins them. finish runs once c is closed (its relay
// ended, or no stream came).
func (r *runner) carry(ctx context.Context, c net.Conn, openTimeout time.Duration, finish func()) {
	relaying := false
	defer func() {
		if !relaying {
			finish()
		}
	}()
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	b := newBackoff(min(r.lo, 250*time.Millisecond), r.hi)
	for {
		s, err := r.session(octx)
		if err != nil {
			c.Close()
			r.log.Warn("no stream for a local connection; closing it", "err", err)
			return
		}
		stream, err := s.Open(octx)
		if err == nil {
			cancel()
			r.retries.ok(ctx)
			relaying = true
			pipe.Start(ctx, c, stream, pipe.Options{}, func(res pipe.Result, err error) {
				r.log.Debug("stream ended", "from_local", res.AToB, "to_local", res.BToA, "err", err)
				finish()
			})
			return
		}
		if octx.Err() != nil {
			c.Close()
			r.log.Warn("no stream for a local connection in time; closing it", "err", err)
			return
		}
		r.retries.failed(ctx, slog.LevelWarn, "opening a stream failed; retrying", err)
		if sessionDead(s, err) {
			r.drop(s)
		}
		if !b.wait(octx) {
			c.Close()
			return
		}
	}
}

// netConner is a stream that wraps a connection only to report its
// origin (see [sdk.OriginStream]) and gives it back.
type netConner interface {
	NetConn() net.Conn
}

// writeProxyHeader writes the PROXY protocol header the connector asked
// for with stream's origin (if any) to the local connection lc, within
// the local dial timeout, and returns the stream to relay: the wrapped
// connection when the stream gives it back, so that a bare socket keeps
// splice.
func (r *runner) writeProxyHeader(stream, lc net.Conn) (net.Conn, error) {
	withOrigin, ok := stream.(sdk.OriginStream)
	if !ok {
		return stream, nil
	}
	o, ok := withOrigin.Origin()
	if nc, wraps := stream.(netConner); wraps {
		stream = nc.NetConn()
	}
	if !ok || o.Proxy == sdk.ProxyNone {
		return stream, nil
	}
	hdr, err := proxyproto.Append(nil, o.Proxy, o.Client, o.Local)
	if err != nil {
		return stream, err
	}
	lc.SetWriteDeadline(time.Now().Add(r.dialTimeout))
	if _, err := lc.Write(hdr); err != nil {
		return stream, err
	}
	lc.SetWriteDeadline(time.Time{})
	r.log.Debug("wrote a PROXY protocol header", "version", o.Proxy.String(), "client", o.Client.String())
	return stream, nil
}
