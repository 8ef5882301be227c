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
	"time"

	xws "golang.org/x/net/websocket"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/streamkit"
)

// Path is the HTTP path agents connect to.
const Path = "/iofog/v1/link"

// New returns the WebSocket transport, named "websocket".
func New() *streamkit.Transport {
	return streamkit.New(streamkit.Config{Name: "websocket", Listen: listen, Dial: dial})
}

// listen serves WebSockets on cfg.Addr (TLS when cfg has it) and hands
// each to the kit as a carrier connection.
func listen(ctx context.Context, cfg sdk.EndpointConfig) (net.Listener, error) {
	raw, err := streamkit.ListenTCP(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &listener{Listener: streamkit.NewListener(raw.Addr()), srvDone: make(chan struct{})}
	l.srv = &http.Server{
		Handler:           xws.Server{Handler: l.serveWS, Handshake: func(*xws.Config, *http.Request) error { return nil }},
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
	srv     *http.Server
	srvDone chan struct{}
}

// serveWS hands one WebSocket to the kit and holds the handler until the
// stream ends: the handler's return would close the connection.
func (l *listener) serveWS(ws *xws.Conn) {
	raw, ok := ws.Request().Context().Value(rawConnKey{}).(net.Conn)
	if !ok {
		ws.Close()
		return
	}
	s := newStream(ws, raw)
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
func dial(ctx context.Context, cfg sdk.DialConfig) (net.Conn, error) {
	wcfg, err := xws.NewConfig("ws://"+cfg.Addr+Path, "http://"+cfg.Addr+"/")
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
	return newStream(ws, raw), nil
}
