package yamux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// Name is the transport's registry name.
const Name = "yamux"

// Transport is the yamux transport. It is safe for concurrent use and holds
// no per-mapping state.
type Transport struct {
	cfg Config
	log *slog.Logger
}

// New returns a yamux transport. log receives transport-wide logs; each
// endpoint and session logs to its config's Logger. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Transport{cfg: cfg, log: sdk.Logger(log)}, nil
}

// Name implements [sdk.Transport.Name].
func (t *Transport) Name() string { return Name }

// Multiplexed reports true: one session carries every stream, so agents
// keep one session by default rather than a pool of links.
func (t *Transport) Multiplexed() bool { return true }

func (t *Transport) yamuxConfig(log *slog.Logger, threshold, interval time.Duration) *hyamux.Config {
	c := hyamux.DefaultConfig()
	c.AcceptBacklog = t.cfg.AcceptBacklog
	c.EnableKeepAlive = true
	c.KeepAliveInterval, c.ConnectionWriteTimeout = keepalive(threshold, interval)
	c.MaxStreamWindowSize = t.cfg.MaxStreamWindowSize
	// Opening never waits for the peer's ACK: a stream waiting in the
	// peer's accept queue must not kill the session.
	c.StreamOpenTimeout = 0
	// Half-closed streams may stay half-closed as long as the peer likes.
	c.StreamCloseTimeout = 0
	c.LogOutput = nil
	c.Logger = slogger{log}
	return c
}

// Listen implements [sdk.Transport.Listen]: a TCP listener (TLS when
// cfg.TLS is set) whose agents each bring one yamux session.
func (t *Transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", Name, err)
	}
	log := sdk.Logger(cfg.Logger)
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{
		Name:          Name,
		Logger:        log,
		Addr:          ln.Addr(),
		MaxLinks:      cfg.MaxLinks,
		CloseListener: ln.Close,
	})
	ymc := t.yamuxConfig(log, cfg.HeartbeatThreshold, 0)
	ep.Go(func() {
		muxkit.Serve(ep, func(context.Context) (net.Conn, error) { return ln.Accept() },
			func(conn net.Conn) { t.admit(ep, log, conn, cfg, ymc) })
	})
	return ep, nil
}

// admit runs the handshake of one agent connection and, if it passes,
// starts its yamux session.
func (t *Transport) admit(ep *muxkit.Endpoint, log *slog.Logger, conn net.Conn, cfg sdk.EndpointConfig, ymc *hyamux.Config) {
	log = log.With(sdk.AttrPeer, conn.RemoteAddr().String())
	leave, ok := ep.Enter(conn.RemoteAddr())
	if !ok {
		conn.Close()
		return
	}
	defer leave()
	c, raw := conn, conn
	if cfg.TLS != nil {
		raw = newCork(conn)
		c = tls.Server(raw, cfg.TLS)
	}
	hello, _, err := ep.Admit(c, conn.RemoteAddr(), muxkit.AdmitConfig{
		Handshake: proto(),
		Passcode:  cfg.Passcode,
		Terms:     terms(cfg),
		Timeout:   t.cfg.HandshakeTimeout,
		Logger:    log,
	})
	if err != nil {
		c.Close()
		return
	}
	rt := track(coalesce(c, raw))
	sess, err := hyamux.Server(rt, ymc)
	if err != nil { // only for an invalid config
		ep.Unreserve()
		c.Close()
		log.Error("starting yamux", "err", err)
		return
	}
	// The session's first stream is the control stream: the connector
	// writes goAwayByte on it when it takes no more streams.
	ctrl, err := sess.OpenStream()
	if err != nil {
		ep.Unreserve()
		sess.Close()
		log.Debug("agent gone before the control stream", "err", err)
		return
	}
	m := &ymux{s: sess, rt: rt, drain: t.cfg.DrainTimeout, ctrl: ctrl, version: hello.Version, log: log}
	if m.aborting() { // the agent sends aborts on the control stream
		go m.watch()
	}
	ep.AddHello(m, hello)
}

// Dial implements [sdk.Transport.Dial]. It connects eagerly: the returned
// Session is one authenticated yamux session; a refused passcode or a full
// endpoint is reported here as [sdk.ErrBadPasscode] or [sdk.ErrLinkLimit].
//
// The hello is the newest version, which makes the connector say its
// heartbeat threshold; the session's keepalive is derived from it (see
// [muxkit.BeatInterval]) and, from version 3, the connector sends each
// stream's origin (a public client's address). A connector that does not
// know that version refuses it, and Dial then dials again with the
// version before, down to version 1 (with the timings of cfg alone).
func (t *Transport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return muxkit.DialVersions(ctx, cfg.Logger, func(v byte) (sdk.Session, error) { return t.dial(ctx, cfg, v) })
}

func (t *Transport) dial(ctx context.Context, cfg sdk.DialConfig, version byte) (sdk.Session, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", Name, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	c, raw := net.Conn(conn), net.Conn(conn)
	if cfg.TLS != nil {
		raw = newCork(conn)
		tc := cfg.TLS.Clone()
		if tc.ServerName == "" {
			if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
				tc.ServerName = host
			}
		}
		c = tls.Client(raw, tc)
	}
	hs := proto()
	hs.Version = version
	var terms muxkit.Terms
	err = hs.WriteHello(c, cfg.Passcode)
	if err == nil {
		terms, err = hs.ReadAnswer(c)
	}
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: dial %s: %w", Name, cfg.Addr, err)
	}
	c.SetDeadline(time.Time{})
	log := sdk.Logger(cfg.Logger)
	threshold, interval := agentTimings(cfg, terms)
	rt := track(coalesce(c, raw))
	sess, err := hyamux.Client(rt, t.yamuxConfig(log, threshold, interval))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	hctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	ctrl, err := sess.AcceptStreamWithContext(hctx)
	if err != nil {
		sess.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: dial %s: no control stream: %w", Name, cfg.Addr, err)
	}
	m := &ymux{s: sess, rt: rt, drain: t.cfg.DrainTimeout, ctrl: ctrl, version: version, log: log, agent: true, awayCh: make(chan struct{})}
	go m.watch()
	return muxkit.NewSessionVersion(Name, m, version), nil
}

// terms are what the connector tells a version 2 agent: the endpoint's
// heartbeat threshold (its default when the mapping has none).
func terms(cfg sdk.EndpointConfig) muxkit.Terms {
	th := cfg.HeartbeatThreshold
	if th <= 0 {
		th = sdk.DefaultHeartbeatThreshold
	}
	return muxkit.Terms{HeartbeatThreshold: th}
}

// agentTimings returns the threshold after which the agent drops a silent
// connector and the interval it pings at: its own settings, else the
// connector's threshold, else the defaults; and never a ping interval the
// connector's threshold would not tolerate.
func agentTimings(cfg sdk.DialConfig, terms muxkit.Terms) (threshold, interval time.Duration) {
	threshold = cfg.HeartbeatThreshold
	if threshold <= 0 {
		threshold = terms.HeartbeatThreshold
	}
	interval = cfg.HeartbeatInterval
	if terms.HeartbeatThreshold > 0 {
		interval = muxkit.BeatInterval(terms.HeartbeatThreshold, interval)
	}
	return threshold, interval
}

// ymux is a yamux session as a muxkit.Conn.
type ymux struct {
	s       *hyamux.Session
	rt      *tracker // the session's connection, which wakes parked readers
	drain   time.Duration
	away    atomic.Bool
	ctrl    *hyamux.Stream // this side's end of the control stream
	version byte           // the hello's version
	agent   bool
	log     *slog.Logger
	// awayCh is closed when the connector says go-away; agents only.
	awayCh chan struct{}
	// streams are the open streams, by id, of a session that aborts.
	streams aborts
}

// peerOpens reports whether stream id is one the peer opens: yamux's
// client (the agent) opens odd ids, its server (the connector) even ones.
func (m *ymux) peerOpens(id uint32) bool { return (id%2 == 0) == m.agent }

// aborting reports whether the session's streams abort (hello version 4).
func (m *ymux) aborting() bool { return m.version >= muxkit.Version4 }

// watch reads the control stream until the session ends: on the agent
// the connector's go-away, and from version 4 on, on both sides, the
// peer's aborts. A message that is not one of these closes a version 4
// session (fail closed); before version 4 the agent stops reading.
func (m *ymux) watch() {
	for {
		kind, id, err := readCtrl(m.ctrl)
		switch {
		case err != nil:
		case kind == ctrlGoAway && !m.agent:
			err = fmt.Errorf("%w: control stream: go-away from the agent", ErrProtocol)
		case kind == ctrlAbort && !m.aborting():
			err = fmt.Errorf("%w: control stream: abort before hello version 4", ErrProtocol)
		}
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				m.log.Warn("closing the session", "err", err)
				if m.aborting() {
					m.s.Close()
				}
			}
			return
		}
		switch kind {
		case ctrlGoAway:
			if !m.away.Swap(true) {
				close(m.awayCh)
			}
		case ctrlAbort:
			m.streams.abort(id, m.peerOpens(id))
		}
	}
}

// OpenStream implements muxkit.Conn.
func (m *ymux) OpenStream(ctx context.Context) (muxkit.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := m.s.OpenStream()
	if errors.Is(err, hyamux.ErrRemoteGoAway) {
		m.away.Store(true)
	}
	if err != nil {
		return nil, err
	}
	return newStream(st, m, false), nil
}

// AcceptStream implements muxkit.Conn.
func (m *ymux) AcceptStream(ctx context.Context) (muxkit.Stream, error) {
	if m.awayCh != nil { // an agent: the connector's go-away ends the wait
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-m.awayCh:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	st, err := m.s.AcceptStreamWithContext(ctx)
	if err != nil {
		if m.away.Load() {
			return nil, errGoAway
		}
		return nil, err
	}
	return newStream(st, m, true), nil
}

// errGoAway is returned by an agent's AcceptStream once the connector said
// it takes no more streams.
var errGoAway = errors.New("yamux: the connector takes no more streams")

// GoAway tells the peer to open no more streams: yamux's GoAway, and on
// the connector the control stream too, since yamux does not surface
// GoAway to a peer waiting in Accept.
func (m *ymux) GoAway() {
	if !m.agent {
		m.ctrl.SetWriteDeadline(time.Now().Add(time.Second))
		m.ctrl.Write([]byte{ctrlGoAway})
	}
	m.s.GoAway()
}

// GoneAway implements muxkit.Conn.
func (m *ymux) GoneAway() bool { return m.away.Load() }

// Probe pings the peer; yamux's Ping has no context, so it runs on and is
// abandoned when ctx ends first (it ends with the session).
func (m *ymux) Probe(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		_, err := m.s.Ping()
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements muxkit.Conn.
func (m *ymux) Close() error { return m.s.Close() }

// Done implements muxkit.Conn.
func (m *ymux) Done() <-chan struct{} { return m.s.CloseChan() }

// proto is the transport's passcode handshake.
func proto() muxkit.Handshake { return muxkit.Handshake{Name: Name, ErrProtocol: ErrProtocol} }

// slogger sends yamux's log lines to slog: its "[ERR]" lines at Warn
// (they are about one peer, not about us), "[WARN]" at Info, the rest at
// Debug.
type slogger struct{ l *slog.Logger }

func (s slogger) Print(v ...any)            { s.log(fmt.Sprint(v...)) }
func (s slogger) Printf(f string, v ...any) { s.log(fmt.Sprintf(f, v...)) }
func (s slogger) Println(v ...any)          { s.log(fmt.Sprint(v...)) }

func (s slogger) log(msg string) {
	msg = strings.TrimSpace(msg)
	switch {
	case strings.HasPrefix(msg, "[ERR]"):
		s.l.Warn(msg)
	case strings.HasPrefix(msg, "[WARN]"):
		s.l.Info(msg)
	default:
		s.l.Debug(msg)
	}
}

var (
	_ sdk.Transport   = (*Transport)(nil)
	_ sdk.Multiplexer = (*Transport)(nil)
	_ sdk.CloseWriter = (*stream)(nil)
	_ net.Conn        = (*stream)(nil)
	_ muxkit.Stream   = (*stream)(nil)
	_ muxkit.Conn     = (*ymux)(nil)
	_ hyamux.Logger   = slogger{}
)
