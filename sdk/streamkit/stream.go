package streamkit

import (
	"crypto/tls"
	"net"
	"sync"

	"github.com/iofog/iofog-connector/sdk"
)

// Aborter is implemented by carrier connections that can end so that
// their peer sees an error rather than the end of the stream (a WebSocket
// closed without its FIN message). Without it the kit resets a TCP
// connection (under TLS too, without close_notify), or else closes it.
type Aborter interface {
	Abort() error
}

// stream is a carrier connection handed out as a stream: tracked by its
// session until it closes, and reporting the origin it came with.
type stream struct {
	net.Conn
	once    sync.Once
	onClose func()

	origin    sdk.Origin // set before the stream is handed out
	hasOrigin bool
}

// Origin implements [sdk.OriginStream].
func (c *stream) Origin() (sdk.Origin, bool) { return c.origin, c.hasOrigin }

// CloseWrite implements [sdk.CloseWriter]: the carrier's, or Close when
// it cannot half-close.
func (c *stream) CloseWrite() error {
	if cw, ok := c.Conn.(sdk.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Close closes the carrier connection.
func (c *stream) Close() error { return c.end(c.Conn.Close) }

// Abort ends the stream so that its peer reads an error, not EOF (see
// [Aborter]).
func (c *stream) Abort() error { return c.end(func() error { return abort(c.Conn) }) }

func (c *stream) end(close func() error) error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = close()
		c.onClose()
	})
	return err
}

// abort ends c as its peer should see a broken connection.
func abort(c net.Conn) error {
	if a, ok := c.(Aborter); ok {
		return a.Abort()
	}
	raw := c
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return raw.Close()
}

// streamSet holds the streams of a session that are not closed yet.
type streamSet struct {
	mu sync.Mutex
	m  map[*stream]struct{}
}

// add tracks c until it closes and returns it as a stream.
func (ss *streamSet) add(c net.Conn) *stream {
	st := &stream{Conn: c}
	st.onClose = func() {
		ss.mu.Lock()
		delete(ss.m, st)
		ss.mu.Unlock()
	}
	ss.mu.Lock()
	if ss.m == nil {
		ss.m = map[*stream]struct{}{}
	}
	ss.m[st] = struct{}{}
	ss.mu.Unlock()
	return st
}

// len returns how many streams are open.
func (ss *streamSet) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

// abort aborts every stream tracked.
func (ss *streamSet) abort() {
	ss.mu.Lock()
	all := make([]*stream, 0, len(ss.m))
	for st := range ss.m {
		all = append(all, st)
	}
	ss.mu.Unlock()
	for _, st := range all {
		st.Abort()
	}
}

var (
	_ sdk.OriginStream = (*stream)(nil)
	_ sdk.CloseWriter  = (*stream)(nil)
	_ Aborter          = (*stream)(nil)
)
