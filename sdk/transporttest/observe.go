package transporttest

import (
	"net"
	"sync"

	"github.com/iofog/iofog-connector/sdk"
)

// CloseStream closes c, a stream ep's Open or Accept returned, as the core
// does: it closes it and then, if ep is an [sdk.StreamObserver], tells ep
// (with the very value Open or Accept returned). A test that uses an
// endpoint without the core closes its connector-side streams with it, so
// that an endpoint that learns stream ends from the core frees their
// places.
func CloseStream(ep sdk.Endpoint, c net.Conn) error {
	err := c.Close()
	if o, ok := ep.(sdk.StreamObserver); ok {
		o.StreamClosed(c)
	}
	return err
}

// observed returns c, a stream ep returned, wrapped so that its Close
// tells ep as [CloseStream] does, once; c itself when ep does not observe
// streams. The wrapper half-closes when c does.
func observed(ep sdk.Endpoint, c net.Conn) net.Conn {
	o, ok := ep.(sdk.StreamObserver)
	if !ok {
		return c
	}
	w := &observedConn{Conn: c, o: o}
	if _, ok := c.(sdk.CloseWriter); ok {
		return &observedHalfConn{w}
	}
	return w
}

type observedConn struct {
	net.Conn
	o    sdk.StreamObserver
	once sync.Once
}

func (c *observedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.o.StreamClosed(c.Conn) })
	return err
}

// NetConn returns the stream as the endpoint returned it.
func (c *observedConn) NetConn() net.Conn { return c.Conn }

type observedHalfConn struct{ *observedConn }

func (c *observedHalfConn) CloseWrite() error { return c.Conn.(sdk.CloseWriter).CloseWrite() }
