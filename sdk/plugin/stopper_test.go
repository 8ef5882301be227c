package plugin_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
)

// stoppingTransport is the reference transport whose endpoints implement
// sdk.Stopper; fail makes the last one stop on its own.
type stoppingTransport struct {
	sdk.Transport
	mu   sync.Mutex
	last *stoppingEndpoint
}

type stoppingEndpoint struct {
	sdk.Endpoint
	once sync.Once
	done chan struct{}
	err  error
}

func (e *stoppingEndpoint) Done() <-chan struct{} { return e.done }
func (e *stoppingEndpoint) Err() error {
	select {
	case <-e.done:
		return e.err
	default:
		return nil
	}
}
func (e *stoppingEndpoint) stop(err error) { e.once.Do(func() { e.err = err; close(e.done) }) }
func (e *stoppingEndpoint) Close() error {
	e.stop(nil)
	return e.Endpoint.Close()
}

func (t *stoppingTransport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	in, err := t.Transport.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ep := &stoppingEndpoint{Endpoint: in, done: make(chan struct{})}
	t.mu.Lock()
	t.last = ep
	t.mu.Unlock()
	return ep, nil
}

func (t *stoppingTransport) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last.stop(err)
}

// TestRemoteEndpointReportsStop: an endpoint that stops on its own in the
// plugin process shows as stopped, with its cause, on the host.
func TestRemoteEndpointReportsStop(t *testing.T) {
	impl := &stoppingTransport{Transport: reftransport.New()}
	r := remote(t, impl)
	ep, err := r.Listen(t.Context(), sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	st, ok := ep.(sdk.Stopper)
	if !ok {
		t.Fatalf("%T does not implement sdk.Stopper", ep)
	}
	select {
	case <-st.Done():
		t.Fatal("Done closed while the endpoint serves")
	case <-time.After(200 * time.Millisecond):
	}
	impl.fail(errors.New("listener broke"))
	select {
	case <-st.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the plugin's endpoint stopped")
	}
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "listener broke") {
		t.Fatalf("Err() = %v, want the plugin's cause", err)
	}
}

// TestRemoteEndpointCloseClosesDone: Close closes Done with a nil Err,
// also for a transport whose endpoints cannot tell that they stopped.
func TestRemoteEndpointCloseClosesDone(t *testing.T) {
	for name, impl := range map[string]sdk.Transport{
		"stopper":    &stoppingTransport{Transport: reftransport.New()},
		"no stopper": reftransport.New(),
	} {
		t.Run(name, func(t *testing.T) {
			r := remote(t, impl)
			ep, err := r.Listen(t.Context(), sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "p"})
			if err != nil {
				t.Fatal(err)
			}
			st := ep.(sdk.Stopper)
			done := st.Done()
			select {
			case <-done:
				t.Fatal("Done closed while the endpoint serves")
			case <-time.After(200 * time.Millisecond):
			}
			ep.Close()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Done not closed by Close")
			}
			if err := st.Err(); err != nil {
				t.Fatalf("Err() = %v after Close, want nil", err)
			}
		})
	}
}
