// Package observetransport is a transport for the tests of package
// sdk/plugin: the reference transport, named "observe", whose endpoints
// implement sdk.StreamObserver and report in their stats how many of the
// streams they handed out are still open (Streams) and how many they were
// told closed (Failed, by reason "observed"), so that a host can see
// across the process boundary that StreamClosed arrived.
package observetransport

import (
	"context"
	"net"
	"sync"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
)

// New returns the observing transport.
func New() sdk.Transport { return transport{reftransport.New()} }

type transport struct{ sdk.Transport }

func (transport) Name() string { return "observe" }

func (t transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	ep, err := t.Transport.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &endpoint{Endpoint: ep, open: map[net.Conn]bool{}}, nil
}

type endpoint struct {
	sdk.Endpoint
	mu     sync.Mutex
	open   map[net.Conn]bool
	closed int64
	twice  int64 // StreamClosed for a stream not open: a broken contract
}

func (e *endpoint) track(c net.Conn, err error) (net.Conn, error) {
	if err == nil {
		e.mu.Lock()
		e.open[c] = true
		e.mu.Unlock()
	}
	return c, err
}

func (e *endpoint) Open(ctx context.Context) (net.Conn, error) { return e.track(e.Endpoint.Open(ctx)) }
func (e *endpoint) Accept(ctx context.Context) (net.Conn, error) {
	return e.track(e.Endpoint.Accept(ctx))
}

// StreamClosed implements sdk.StreamObserver.
func (e *endpoint) StreamClosed(c net.Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.open[c] {
		e.twice++
		return
	}
	delete(e.open, c)
	e.closed++
}

// Stats reports the open streams and how many were told closed.
func (e *endpoint) Stats() sdk.EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sdk.EndpointStats{Streams: len(e.open), Failed: e.closed + e.twice,
		FailedByReason: map[string]int64{"observed": e.closed, "unknown": e.twice}}
}
