package quic

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// Name is the transport's registry name.
const Name = "quic"

// Application error codes the connector closes a refused connection with.
const (
	codeOK           quicgo.ApplicationErrorCode = 0
	codeBadPasscode  quicgo.ApplicationErrorCode = 0x101
	codeLinkLimit    quicgo.ApplicationErrorCode = 0x102
	codeIncompatible quicgo.ApplicationErrorCode = 0x103
	codeProtocol     quicgo.ApplicationErrorCode = 0x104
)

// Transport is the QUIC transport. It is safe for concurrent use; its only
// state is the dev identity, made on first use.
type Transport struct {
	cfg Config
	log *slog.Logger

	idMu sync.Mutex
	id   *identity

	insecureOnce sync.Once
	hintOnce     sync.Once
}

// New returns a QUIC transport. log receives transport-wide logs (the dev
// identity, the UDP buffer hint); each endpoint and session logs to its
// config's Logger. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Transport{cfg: cfg, log: sdk.Logger(log).With(sdk.AttrTransport, Name)}, nil
}

// Name implements [sdk.Transport.Name].
func (t *Transport) Name() string { return Name }

// Multiplexed reports true: one session carries every stream, so agents
// keep one session by default rather than a pool of links.
func (t *Transport) Multiplexed() bool { return true }

// Identity returns the connector's dev-mode identity, generating (and, with
// Config.IdentityDir, saving) it on first use: the certificate in PEM, the
// file it is saved in (empty when kept in memory) and the hex SHA-256 of
// its DER, which agents can pin. Agents trust it with --ca certPath.
func (t *Transport) Identity() (certPEM []byte, certPath, sha256Hex string, err error) {
	id, err := t.identity()
	if err != nil {
		return nil, "", "", err
	}
	return id.certPEM, id.certPath, id.fingerprint(), nil
}

func (t *Transport) identity() (*identity, error) {
	t.idMu.Lock()
	defer t.idMu.Unlock()
	if t.id != nil {
		return t.id, nil
	}
	id, err := loadIdentity(t.cfg.IdentityDir, t.cfg.IdentityHosts)
	if err != nil {
		return nil, err
	}
	t.id = id
	t.log.Info("quic dev identity ready; agents trust it with --ca (the cert file) or by pinning its SHA-256",
		"cert", id.certPath, "sha256", id.fingerprint())
	return id, nil
}

func (t *Transport) quicConfig(threshold, interval time.Duration) *quicgo.Config {
	keepAlive, idle := timing(threshold, interval)
	return &quicgo.Config{
		HandshakeIdleTimeout:       t.cfg.HandshakeTimeout,
		MaxIdleTimeout:             idle,
		KeepAlivePeriod:            keepAlive,
		MaxIncomingStreams:         t.cfg.MaxStreams,
		MaxStreamReceiveWindow:     t.cfg.MaxStreamReceiveWindow,
		MaxConnectionReceiveWindow: t.cfg.MaxConnectionReceiveWindow,
		// With QLOGDIR set, each connection writes a qlog trace there
		// (congestion window, RTT, losses, drops); unset, none.
		Tracer: qlog.DefaultConnectionTracer,
	}
}

// Listen implements [sdk.Transport.Listen]: a QUIC listener on UDP cfg.Addr,
// TLS 1.3 with cfg.TLS, or with the dev identity when cfg.TLS is nil.
func (t *Transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	var tlsConf *tls.Config
	if cfg.TLS != nil {
		tlsConf = cfg.TLS.Clone()
	} else {
		id, err := t.identity()
		if err != nil {
			return nil, err
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{id.cert}}
	}
	tlsConf.NextProtos = []string{ALPN}
	tlsConf.MinVersion = tls.VersionTLS13

	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", Name, err)
	}
	udp, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("%s: listen: %T is not a UDP socket", Name, pc)
	}
	log := sdk.Logger(cfg.Logger)
	t.buffers(udp, log)
	var ln *quicgo.Listener // set before ep is handed out
	sock := &sockRef{}
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{
		Name:     Name,
		Logger:   log,
		Addr:     udp.LocalAddr(),
		MaxLinks: cfg.MaxLinks,
		CloseListener: func() error {
			err := ln.Close()
			sock.listenerDone()
			return err
		},
	})
	qt := &quicgo.Transport{Conn: t.packetConn(udp), ConnContext: t.pendingGate(ep)}
	sock.closeFn = func() { qt.Close(); udp.Close() }
	ln, err = qt.Listen(tlsConf, t.quicConfig(cfg.HeartbeatThreshold, 0))
	if err != nil {
		qt.Close()
		udp.Close()
		return nil, fmt.Errorf("%s: listen: %w", Name, err)
	}
	ep.Go(func() {
		muxkit.Serve(ep, ln.Accept, func(c *quicgo.Conn) {
			sock.hold(c)
			t.admit(ep, log, c, cfg)
		})
	})
	return ep, nil
}

// buffers raises udp's socket buffers (setBuffers) and, the first time the
// kernel grants less than quic-go wants, logs how to lift its limits.
func (t *Transport) buffers(udp *net.UDPConn, log *slog.Logger) {
	rcv, snd := setBuffers(udp)
	if rcv >= wantBuffer && snd >= wantBuffer {
		return
	}
	t.hintOnce.Do(func() {
		log.Warn("the kernel limits UDP socket buffers below what QUIC needs for high throughput; raise the limits: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 (or run with CAP_NET_ADMIN)",
			"rcvbuf", rcv, "sndbuf", snd, "want", wantBuffer)
	})
}

// packetConn is what quic-go reads and writes udp through: with UDP GRO
// unless Config.DisableGRO.
func (t *Transport) packetConn(udp *net.UDPConn) net.PacketConn {
	if t.cfg.DisableGRO {
		return udp
	}
	return withGRO(udp)
}

// pendingKey is the context key of a connection's pending-handshake place.
type pendingKey struct{}

// pendingGate returns the quic-go callback that takes a pending-handshake
// place for each new connection before its TLS handshake, refusing it
// (CONNECTION_REFUSED) when its source has too many pending. The place is
// given back when the passcode handshake is over, when the connection
// ends, or at the latest after twice the handshake timeout.
func (t *Transport) pendingGate(ep *muxkit.Endpoint) func(context.Context, *quicgo.ClientInfo) (context.Context, error) {
	return func(ctx context.Context, info *quicgo.ClientInfo) (context.Context, error) {
		leave, ok := ep.Enter(info.RemoteAddr)
		if !ok {
			return nil, errTooManyPending
		}
		timer := time.AfterFunc(2*t.cfg.HandshakeTimeout, leave)
		context.AfterFunc(ctx, func() { timer.Stop(); leave() })
		return context.WithValue(ctx, pendingKey{}, leave), nil
	}
}

// errTooManyPending refuses a connection whose source has too many
// handshakes pending.
var errTooManyPending = errors.New("quic: too many pending handshakes from this source")

// sockRef closes an endpoint's UDP socket once its listener is closed and
// the last connection on it is gone, so that streams outlive
// Endpoint.Close.
type sockRef struct {
	closeFn func()

	mu   sync.Mutex
	n    int
	done bool
}

func (s *sockRef) hold(c *quicgo.Conn) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	context.AfterFunc(c.Context(), s.release)
}

func (s *sockRef) release() {
	s.mu.Lock()
	s.n--
	last := s.done && s.n == 0
	s.mu.Unlock()
	if last {
		s.closeFn()
	}
}

func (s *sockRef) listenerDone() {
	s.mu.Lock()
	last := !s.done && s.n == 0
	s.done = true
	s.mu.Unlock()
	if last {
		s.closeFn()
	}
}

// admit runs the passcode handshake on the first stream of a new
// connection and, if it passes, serves the connection as a link.
func (t *Transport) admit(ep *muxkit.Endpoint, log *slog.Logger, c *quicgo.Conn, cfg sdk.EndpointConfig) {
	log = log.With(sdk.AttrPeer, c.RemoteAddr().String())
	if leave, ok := c.Context().Value(pendingKey{}).(func()); ok {
		defer leave()
	}
	hctx, cancel := context.WithTimeout(ep.Context(), t.cfg.HandshakeTimeout)
	defer cancel()
	st, err := c.AcceptStream(hctx)
	if err != nil {
		c.CloseWithError(codeProtocol, "no handshake")
		log.Debug("agent handshake failed", "err", err)
		ep.Failed(c.RemoteAddr(), admission.Reason(err))
		return
	}
	hello, answer, err := ep.Admit(st, c.RemoteAddr(), muxkit.AdmitConfig{
		Handshake: proto(), Passcode: cfg.Passcode, Terms: terms(cfg), Timeout: t.cfg.HandshakeTimeout, Logger: log,
	})
	if err != nil {
		c.CloseWithError(refusal(answer))
		return
	}
	st.CancelRead(codeClosed)
	st.Close()
	ep.AddHello(&qmux{c: c}, hello)
}

func refusal(answer muxkit.Answer) (quicgo.ApplicationErrorCode, string) {
	switch answer {
	case muxkit.AnswerBadPasscode:
		return codeBadPasscode, "bad passcode"
	case muxkit.AnswerLinkLimit:
		return codeLinkLimit, "link limit"
	case muxkit.AnswerIncompatible:
		return codeIncompatible, "incompatible version"
	}
	return codeOK, "closed"
}

// Dial implements [sdk.Transport.Dial]. It connects eagerly from a UDP
// socket of its own: the returned Session is one authenticated QUIC
// connection; a refused passcode or a full endpoint is reported here as
// [sdk.ErrBadPasscode] or [sdk.ErrLinkLimit]. A connector that does not
// know the newest hello version refuses it, and Dial then dials again with
// the version before, down to version 1.
func (t *Transport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return muxkit.DialVersions(ctx, cfg.Logger, func(v byte) (sdk.Session, error) { return t.dial(ctx, cfg, v) })
}

func (t *Transport) dial(ctx context.Context, cfg sdk.DialConfig, version byte) (sdk.Session, error) {
	raddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", Name, err)
	}
	log := sdk.Logger(cfg.Logger)
	tlsConf := t.clientTLS(cfg, log)
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", Name, err)
	}
	t.buffers(udp, log)
	qt := &quicgo.Transport{Conn: t.packetConn(udp)}
	c, err := qt.Dial(ctx, raddr, tlsConf, t.quicConfig(cfg.HeartbeatThreshold, cfg.HeartbeatInterval))
	if err != nil {
		qt.Close()
		udp.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: dial %s: %w", Name, cfg.Addr, err)
	}
	context.AfterFunc(c.Context(), func() { qt.Close(); udp.Close() })
	if _, err := handshake(ctx, c, cfg.Passcode, version); err != nil {
		c.CloseWithError(codeOK, "handshake failed")
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: dial %s: %w", Name, cfg.Addr, err)
	}
	return muxkit.NewSessionVersion(Name, &qmux{c: c}, version), nil
}

// terms are what the connector tells a version 2 agent: the endpoint's
// heartbeat threshold (its default when the mapping has none). A QUIC
// agent needs no more: the connection's idle timeout is the smaller of the
// two sides', so the agent's follows the connector's and its keepalive
// (half of the idle timeout at most) with it.
func terms(cfg sdk.EndpointConfig) muxkit.Terms {
	th := cfg.HeartbeatThreshold
	if th <= 0 {
		th = sdk.DefaultHeartbeatThreshold
	}
	return muxkit.Terms{HeartbeatThreshold: th}
}

func (t *Transport) clientTLS(cfg sdk.DialConfig, log *slog.Logger) *tls.Config {
	var tc *tls.Config
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
		if tc.ServerName == "" {
			if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
				tc.ServerName = host
			}
		}
	} else {
		tc = &tls.Config{InsecureSkipVerify: true}
		if pin := strings.ToLower(strings.ReplaceAll(t.cfg.PinSHA256, ":", "")); pin != "" {
			tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return ErrPinMismatch
				}
				sum := sha256.Sum256(raw[0])
				if hex.EncodeToString(sum[:]) != pin {
					return ErrPinMismatch
				}
				return nil
			}
		} else {
			t.insecureOnce.Do(func() {
				log.Warn("quic: no CA and no pin given, so the connector's certificate is not verified (dev mode); pass --ca with its quic-identity.crt to verify it")
			})
		}
	}
	tc.NextProtos = []string{ALPN}
	tc.MinVersion = tls.VersionTLS13
	return tc
}

// handshake sends the passcode on the connection's first stream, in hello
// version, and reads the connector's answer.
func handshake(ctx context.Context, c *quicgo.Conn, passcode string, version byte) (muxkit.Terms, error) {
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return muxkit.Terms{}, mapConnErr(err)
	}
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hs := proto()
	hs.Version = version
	var terms muxkit.Terms
	err = hs.WriteHello(st, passcode)
	if err == nil {
		terms, err = hs.ReadAnswer(st)
	}
	st.CancelRead(codeClosed)
	st.Close()
	return terms, mapConnErr(err)
}

// mapConnErr maps the connector's refusal codes to sdk errors.
func mapConnErr(err error) error {
	var aerr *quicgo.ApplicationError
	if errors.As(err, &aerr) && aerr.Remote {
		switch aerr.ErrorCode {
		case codeBadPasscode:
			return sdk.ErrBadPasscode
		case codeLinkLimit:
			return sdk.ErrLinkLimit
		case codeIncompatible:
			return sdk.ErrIncompatible
		}
	}
	return err
}

// qmux is a QUIC connection as a muxkit.Conn. Every stream starts with one
// header byte (0) from its opener, because quic-go shows a peer-opened
// stream only once data arrives on it, and the agent must see a new
// stream before anyone speaks (server-speaks-first protocols).
type qmux struct {
	c    *quicgo.Conn
	away atomic.Bool
}

// Stream header bytes.
const (
	headerStream byte = 0 // a stream for a client or a private pipe
	headerGoAway byte = 1 // the opener takes no more streams; then closed
)

// errGoAway is returned by AcceptStream once the peer said goodbye.
var errGoAway = errors.New("quic: the peer takes no more streams")

// headerTimeout bounds the wait for a new stream's header byte.
const headerTimeout = 10 * time.Second

// OpenStream implements muxkit.Conn.
func (m *qmux) OpenStream(ctx context.Context) (muxkit.Stream, error) {
	st, err := m.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write([]byte{headerStream}); err != nil {
		st.CancelRead(codeClosed)
		st.CancelWrite(codeClosed)
		return nil, err
	}
	return newStream(st, m.c), nil
}

// AcceptStream implements muxkit.Conn.
func (m *qmux) AcceptStream(ctx context.Context) (muxkit.Stream, error) {
	for {
		st, err := m.c.AcceptStream(ctx)
		if err != nil {
			return nil, err
		}
		st.SetReadDeadline(time.Now().Add(headerTimeout))
		stop := context.AfterFunc(ctx, func() { st.SetReadDeadline(time.Unix(1, 0)) })
		var b [1]byte
		_, err = io.ReadFull(st, b[:])
		stop()
		if err == nil && b[0] == headerStream {
			st.SetReadDeadline(time.Time{})
			return newStream(st, m.c), nil
		}
		st.CancelRead(codeClosed)
		st.CancelWrite(codeClosed)
		if err == nil && b[0] == headerGoAway {
			m.away.Store(true)
			return nil, errGoAway
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// GoAway tells the peer, on a stream of its own, that this side takes no
// more streams (QUIC has no GOAWAY of its own).
func (m *qmux) GoAway() {
	st, err := m.c.OpenStream()
	if err != nil {
		return
	}
	st.Write([]byte{headerGoAway})
	st.CancelRead(codeClosed)
	st.Close()
	// Streams the peer opened before it heard are refused, so that its
	// side sees them fail instead of waiting; this ends with the
	// connection, which closes with its last stream.
	go func() {
		for {
			st, err := m.c.AcceptStream(m.c.Context())
			if err != nil {
				return
			}
			st.CancelRead(codeClosed)
			st.CancelWrite(codeClosed)
		}
	}()
}

// GoneAway implements muxkit.Conn.
func (m *qmux) GoneAway() bool { return m.away.Load() }

// Probe reports nothing: quic-go has no ping to wait on. A dead QUIC
// connection ends at its idle timeout, and an agent whose address changed
// keeps its connection (migration) instead of making a new one.
func (m *qmux) Probe(context.Context) error { return nil }

// Close implements muxkit.Conn.
func (m *qmux) Close() error { return m.c.CloseWithError(codeOK, "closed") }

// Done implements muxkit.Conn.
func (m *qmux) Done() <-chan struct{} { return m.c.Context().Done() }

// proto is the transport's passcode handshake.
func proto() muxkit.Handshake { return muxkit.Handshake{Name: Name, ErrProtocol: ErrProtocol} }

var (
	_ sdk.Transport   = (*Transport)(nil)
	_ sdk.Multiplexer = (*Transport)(nil)
	_ sdk.CloseWriter = (*stream)(nil)
	_ net.Conn        = (*stream)(nil)
	_ muxkit.Stream   = (*stream)(nil)
	_ muxkit.Conn     = (*qmux)(nil)
)
