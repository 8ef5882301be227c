package plugins

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
)

// endpoint is the host's view of a plugin endpoint. It outlives the plugin
// process: after a restart it points at the endpoint listened again on the
// new process.
type endpoint struct {
	t   *Transport
	cfg sdk.EndpointConfig

	mu      sync.Mutex
	inner   sdk.Endpoint  // nil while the plugin is down
	changed chan struct{} // closed and replaced when inner changes
	closed  bool
	last    sdk.Endpoint // the last inner, kept past Close for StreamClosed

	// sdk.Stopper: done is closed by Close or when the endpoint is lost
	// for good (the plugin's endpoint stopped on its own, or listening it
	// again on a restarted plugin failed); stopErr says why.
	done     chan struct{}
	stopOnce sync.Once
	stopErr  error // guarded by mu
}

func newEndpoint(t *Transport, cfg sdk.EndpointConfig, inner sdk.Endpoint) *endpoint {
	e := &endpoint{t: t, cfg: cfg, inner: inner, last: inner, changed: make(chan struct{}), done: make(chan struct{})}
	e.watch(inner)
	return e
}

// watch stops e when inner, still e's endpoint, stops on its own. The
// death of the plugin process is not such a stop: the supervisor listens
// the endpoint again on the new process.
func (e *endpoint) watch(inner sdk.Endpoint) {
	st, ok := inner.(sdk.Stopper)
	if !ok {
		return
	}
	go func() {
		<-st.Done()
		err := st.Err()
		if err == nil || errors.Is(err, sdk.ErrTransportUnavailable) {
			return
		}
		e.mu.Lock()
		current := e.inner == inner && !e.closed
		e.mu.Unlock()
		if current {
			e.t.log.Error("a plugin endpoint stopped accepting agents", sdk.AttrMappingID, e.cfg.MappingID, sdk.AttrSide, e.cfg.Side, "err", err)
			e.stop(fmt.Errorf("plugins: %s: %w", e.t.info.Name, err))
		}
	}()
}

func (e *endpoint) stop(err error) {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopErr = err
		e.mu.Unlock()
		close(e.done)
	})
}

// Done implements [sdk.Stopper].
func (e *endpoint) Done() <-chan struct{} { return e.done }

// Err implements [sdk.Stopper].
func (e *endpoint) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopErr
}

func (e *endpoint) setInner(in sdk.Endpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		if in != nil {
			in.Close()
		}
		return
	}
	e.inner = in
	if in != nil {
		e.last = in
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// relisten listens the endpoint again on a new incarnation r.
func (e *endpoint) relisten(ctx context.Context, r *plugin.Remote) bool {
	var err error
	for i := range 5 {
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if closed {
			return false
		}
		var in sdk.Endpoint
		lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		in, err = r.Listen(lctx, e.cfg)
		cancel()
		if err == nil {
			e.setInner(in)
			e.watch(in)
			return true
		}
		time.Sleep(time.Duration(i+1) * 500 * time.Millisecond)
	}
	e.t.log.Error("listening an endpoint again on the restarted plugin failed", sdk.AttrMappingID, e.cfg.MappingID, sdk.AttrSide, e.cfg.Side, "addr", e.cfg.Addr, "err", err)
	e.stop(fmt.Errorf("plugins: %s: listening again after a restart: %w", e.t.info.Name, err))
	return false
}

// current waits for a live inner endpoint.
func (e *endpoint) current(ctx context.Context) (sdk.Endpoint, error) {
	for {
		e.mu.Lock()
		in, ch, closed := e.inner, e.changed, e.closed
		e.mu.Unlock()
		switch {
		case closed:
			return nil, sdk.ErrClosed
		case in != nil:
			return in, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (e *endpoint) call(ctx context.Context, f func(sdk.Endpoint, context.Context) (net.Conn, error)) (net.Conn, error) {
	in, err := e.current(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := f(in, ctx)
	if err != nil && errors.Is(err, net.ErrClosed) {
		e.mu.Lock()
		closed := e.closed
		e.mu.Unlock()
		if !closed {
			// The plugin process lost the endpoint without us closing it.
			return nil, fmt.Errorf("plugins: %s: %w: %v", e.t.info.Name, sdk.ErrTransportUnavailable, err)
		}
	}
	return conn, err
}

func (e *endpoint) Open(ctx context.Context) (net.Conn, error) {
	return e.call(ctx, func(in sdk.Endpoint, ctx context.Context) (net.Conn, error) { return in.Open(ctx) })
}

func (e *endpoint) Accept(ctx context.Context) (net.Conn, error) {
	return e.call(ctx, func(in sdk.Endpoint, ctx context.Context) (net.Conn, error) { return in.Accept(ctx) })
}

func (e *endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	in := e.inner
	e.inner = nil
	close(e.changed)
	e.mu.Unlock()
	e.stop(nil)
	e.t.mu.Lock()
	delete(e.t.endpoints, e)
	e.t.mu.Unlock()
	if in == nil {
		return nil
	}
	err := in.Close()
	if errors.Is(err, sdk.ErrTransportUnavailable) {
		return nil // the process is gone, and the endpoint with it
	}
	return err
}

// StreamClosed implements [sdk.StreamObserver]: it tells the plugin's
// endpoint (see sdk/plugin), which ignores streams it did not hand out,
// such as those of an incarnation of the plugin that died.
func (e *endpoint) StreamClosed(c net.Conn) {
	e.mu.Lock()
	in := e.inner
	if in == nil {
		in = e.last
	}
	e.mu.Unlock()
	if o, ok := in.(sdk.StreamObserver); ok {
		o.StreamClosed(c)
	}
}

func (e *endpoint) Stats() sdk.EndpointStats {
	e.mu.Lock()
	in := e.inner
	e.mu.Unlock()
	if sr, ok := in.(sdk.StatsReporter); ok {
		return sr.Stats()
	}
	return sdk.EndpointStats{}
}

var (
	_ sdk.Endpoint       = (*endpoint)(nil)
	_ sdk.StatsReporter  = (*endpoint)(nil)
	_ sdk.Stopper        = (*endpoint)(nil)
	_ sdk.StreamObserver = (*endpoint)(nil)
)
