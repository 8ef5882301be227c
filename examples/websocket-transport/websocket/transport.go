// Package websocket is an iofog-connector transport that carries agent
// links over WebSocket, so agents behind proxies that pass only HTTP(S) can
// reach the connector. It is a third-party transport built from the sdk
// alone, served as a plugin by the command in the parent directory.
//
// It is package sdk/streamkit over WebSockets: every carrier connection
// is a WebSocket (ws://, or wss:// when the endpoint has TLS) to
// /iofog/v1/link, whose binary frames carry bytes and whose text frame
// "FIN" half-closes a direction (see stream.go). Inside, the kit's wire
// format runs unchanged: "REF1", a kind byte, the passcode and ids, a
// status answer, one control WebSocket per session carrying heartbeats,
// the endpoint's threshold and stream requests (with the stream's origin
// for agents that announce they read it), and one WebSocket per stream.
// A stream aborted (its session went silent) is closed without FIN, so
// its peer reads io.ErrUnexpectedEOF rather than io.EOF.
package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	xws "golang.org/x/net/websocket"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/streamkit"
)

// Path is the HTTP path agents connect to, unless Config.Path names
// another.
const Path = "/iofog/v1/link"

// Config are the transport's settings: transports.websocket in the
// connector's (and the agent's) settings file, or
// IOFOG_CONNECTOR_TRANSPORTS_WEBSOCKET_<KEY> (see sdk/plugin Configurable).
// The connector and its agents must agree on Path.
type Config struct {
	// Path is the HTTP path of the WebSocket (path): "/iofog/v1/link" by
	// default. A reverse proxy in front of the connector may want another.
	Path string
	// ReadLimit is the largest WebSocket frame a stream takes, in bytes
	// (read-limit); a larger frame breaks the stream. 32 MiB by default.
	ReadLimit int
}

// DefaultConfig returns the settings the transport runs on when it is
// given none.
func DefaultConfig() Config { return Config{Path: Path, ReadLimit: xws.DefaultMaxPayloadBytes} }

// Validate checks c.
func (c *Config) Validate() error {
	if !validPath(c.Path) {
		return fmt.Errorf("path %q is not an HTTP path (starting with /, at most 256 bytes of letters, digits and /._~-)", c.Path)
	}
	if c.ReadLimit < 1024 || c.ReadLimit > 256<<20 {
		return fmt.Errorf("read-limit %d is not between 1024 and %d bytes", c.ReadLimit, 256<<20)
	}
	return nil
}

func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > 256 {
		return false
	}
	for _, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._~-", r)
		if !ok {
			return false
		}
	}
	return true
}

// Transport is the WebSocket transport: package sdk/streamkit over
// WebSockets, configurable by the operator's settings (sdk/plugin
// Configurable).
type Transport struct {
	*streamkit.Transport
	cfg atomic.Pointer[Config]
}

// New returns the WebSocket transport, named "websocket", on
// DefaultConfig.
func New() *Transport {
	t := &Transport{}
	cfg := DefaultConfig()
	t.cfg.Store(&cfg)
	t.Transport = streamkit.New(streamkit.Config{Name: "websocket", Listen: t.listen, Dial: t.dial})
	return t
}

// Config returns the settings the transport runs on.
func (t *Transport) Config() Config { return *t.cfg.Load() }

// Configure implements sdk/plugin Configurable: it decodes the operator's
// settings (path, read-limit) over DefaultConfig. Endpoints and sessions
// started later use them.
func (t *Transport) Configure(_ context.Context, s plugin.Settings) error {
	cfg := DefaultConfig()
	if err := s.Decode(&cfg); err != nil {
		return err
	}
	t.cfg.Store(&cfg)
	return nil
}

// listen serves WebSockets on cfg.Addr (TLS when cfg has it) and hands
// each to the kit as a carrier connection.
func (t *Transport) listen(ctx context.Context, cfg sdk.EndpointConfig) (net.Listener, error) {
	opts := t.Config()
	raw, err := streamkit.ListenTCP(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &listener{Listener: streamkit.NewListener(raw.Addr()), srvDone: make(chan struct{}), readLimit: opts.ReadLimit}
	ws := xws.Server{Handler: l.serveWS, Handshake: func(*xws.Config, *http.Request) error { return nil }}
	l.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != opts.Path {
				http.NotFound(w, r)
				return
			}
			ws.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, rawConnKey{}, c)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(l.srvDone)
		if err := l.srv.Serve(raw); !errors.Is(err, http.ErrServerClosed) {
			l.Fail(fmt.Errorf("http server: %w", err))
		}
	}()
	return l, nil
}

type rawConnKey struct{}

// listener is the kit's listener fed by an HTTP server's WebSockets.
type listener struct {
	*streamkit.Listener
	srv       *http.Server
	srvDone   chan struct{}
	readLimit int
}

// serveWS hands one WebSocket to the kit and holds the handler until the
// stream ends: the handler's return would close the connection.
func (l *listener) serveWS(ws *xws.Conn) {
	raw, ok := ws.Request().Context().Value(rawConnKey{}).(net.Conn)
	if !ok {
		ws.Close()
		return
	}
	s := newStream(ws, raw, l.readLimit)
	if err := l.Put(ws.Request().Context(), s); err != nil {
		s.Abort()
		return
	}
	<-s.done
}

// Close stops the HTTP server; WebSockets already handed out are the
// kit's.
func (l *listener) Close() error {
	l.Listener.Close()
	err := l.srv.Close()
	<-l.srvDone
	return err
}

// dial opens one WebSocket to cfg.Addr, bounded by ctx.
func (t *Transport) dial(ctx context.Context, cfg sdk.DialConfig) (net.Conn, error) {
	opts := t.Config()
	wcfg, err := xws.NewConfig("ws://"+cfg.Addr+opts.Path, "http://"+cfg.Addr+"/")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", sdk.ErrInvalidConfig, err)
	}
	raw, err := new(net.Dialer).DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if tc := streamkit.ClientTLS(cfg); tc != nil {
		raw = tls.Client(raw, tc)
		wcfg.Location.Scheme = "wss"
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	ws, err := xws.NewClient(wcfg, raw)
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	return newStream(ws, raw, opts.ReadLimit), nil
}

var _ plugin.Configurable = (*Transport)(nil)
