package streamkit

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"

	"github.com/iofog/iofog-connector/sdk"
)

// ListenFunc binds an endpoint's agent port, cfg.Addr, and returns the
// listener of its carrier connections, under TLS when cfg.TLS is set. ctx
// bounds only the start-up. A bind failure must wrap its cause (such as
// syscall.EADDRINUSE).
type ListenFunc func(ctx context.Context, cfg sdk.EndpointConfig) (net.Listener, error)

// DialFunc opens one carrier connection to cfg.Addr, under TLS when
// cfg.TLS is set, bounded by ctx. The kit calls it once for a session's
// control connection and once per stream.
type DialFunc func(ctx context.Context, cfg sdk.DialConfig) (net.Conn, error)

// ListenTCP is the [ListenFunc] of TCP: a TCP listener on cfg.Addr,
// wrapped in TLS with cfg.TLS when it is set.
func ListenTCP(ctx context.Context, cfg sdk.EndpointConfig) (net.Listener, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	return ln, nil
}

// DialTCP is the [DialFunc] of TCP: a TCP connection to cfg.Addr, as a
// TLS client of cfg.TLS when it is set (whose ServerName, when empty, is
// cfg.Addr's host, as tls.Dial does; the TLS handshake runs at the first
// write, under the kit's deadline).
func DialTCP(ctx context.Context, cfg sdk.DialConfig) (net.Conn, error) {
	c, err := new(net.Dialer).DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if cfg.TLS == nil {
		return c, nil
	}
	return tls.Client(c, ClientTLS(cfg)), nil
}

// ClientTLS returns cfg.TLS, or a copy of it whose empty ServerName is
// cfg.Addr's host, as tls.Dial does. It returns nil when cfg.TLS is nil.
func ClientTLS(cfg sdk.DialConfig) *tls.Config {
	tc := cfg.TLS
	if tc != nil && tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName, _, _ = net.SplitHostPort(cfg.Addr)
	}
	return tc
}

// Listener is a [net.Listener] fed by callbacks: a carrier whose
// connections arrive in a handler (an HTTP server upgrading requests to
// WebSockets) hands each to [Listener.Put], and the kit accepts it. It is
// safe for concurrent use.
type Listener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	err    error
}

// NewListener returns a listener whose Addr is addr.
func NewListener(addr net.Addr) *Listener {
	return &Listener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Put hands c to the next Accept. It blocks until Accept takes it, ctx
// ends or the listener closes; it then returns an error and c is still
// the caller's to close.
func (l *Listener) Put(ctx context.Context, c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Accept implements [net.Listener]: the next connection given to Put. It
// returns net.ErrClosed once the listener is closed, or the error given
// to [Listener.Fail].
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, l.err
	}
}

// Fail closes the listener with err, which Accept then returns: the
// carrier stopped serving for good (its HTTP server failed). The kit's
// endpoint then reports err through [sdk.Stopper].
func (l *Listener) Fail(err error) {
	l.once.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.closed)
	})
}

// Close implements [net.Listener]: later Accept calls return
// net.ErrClosed. It is idempotent.
func (l *Listener) Close() error {
	l.Fail(net.ErrClosed)
	return nil
}

// Addr implements [net.Listener].
func (l *Listener) Addr() net.Addr { return l.addr }

var _ net.Listener = (*Listener)(nil)
