package core

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

// stopTransport makes endpoints that the test can stop "on their own"
// (sdk.Stopper) and can refuse Listen for a while.
type stopTransport struct {
	mu      sync.Mutex
	eps     []*stopEndpoint
	cfgs    []sdk.EndpointConfig
	refuse  bool // Listen fails while true
	listens atomic.Int32
}

func (t *stopTransport) Name() string { return "stoptest" }

func (t *stopTransport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	t.listens.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refuse {
		return nil, errors.New("stoptest: not now")
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	ep := &stopEndpoint{ln: ln, done: make(chan struct{}), closed: make(chan struct{})}
	t.eps = append(t.eps, ep)
	t.cfgs = append(t.cfgs, cfg)
	return ep, nil
}

func (t *stopTransport) Dial(context.Context, sdk.DialConfig) (sdk.Session, error) {
	return nil, errors.ErrUnsupported
}

func (t *stopTransport) last() (*stopEndpoint, sdk.EndpointConfig, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.eps[len(t.eps)-1], t.cfgs[len(t.cfgs)-1], len(t.eps)
}

func (t *stopTransport) setRefuse(b bool) {
	t.mu.Lock()
	t.refuse = b
	t.mu.Unlock()
}

type stopEndpoint struct {
	ln        net.Listener
	stopOnce  sync.Once
	done      chan struct{}
	err       error
	closeOnce sync.Once
	closed    chan struct{}
}

// fail stops the endpoint on its own, as a dead accept loop does.
func (e *stopEndpoint) fail(err error) {
	e.stopOnce.Do(func() { e.err = err; close(e.done) })
}

func (e *stopEndpoint) Done() <-chan struct{} { return e.done }
func (e *stopEndpoint) Err() error {
	select {
	case <-e.done:
		return e.err
	default:
		return nil
	}
}

// Open hands out one end of a pipe whose other end says who made it.
func (e *stopEndpoint) Open(ctx context.Context) (net.Conn, error) {
	select {
	case <-e.closed:
		return nil, sdk.ErrClosed
	default:
	}
	a, b := net.Pipe()
	go func() { b.Write([]byte(e.ln.Addr().String())); b.Close() }()
	return a, nil
}

func (e *stopEndpoint) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case <-e.closed:
		return nil, sdk.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *stopEndpoint) Close() error {
	e.closeOnce.Do(func() {
		e.fail(nil)
		close(e.closed)
		e.ln.Close()
	})
	return nil
}

// TestStoppedEndpointIsRestarted: an endpoint that stops on its own shows
// an error in status, is listened again on the same port with the same
// config (passcode included), and serves again, with no error left.
func TestStoppedEndpointIsRestarted(t *testing.T) {
	timer := time.AfterFunc(time.Minute, func() { panic("TestStoppedEndpointIsRestarted hung") })
	defer timer.Stop()
	st, _, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := &stopTransport{}
	m, err := New(Config{
		BindHost: "127.0.0.1", Ports: ports.New(freePorts(t, 4)), Store: st,
		Transports: map[string]sdk.Transport{"stoptest": tr}, DefaultTransport: "stoptest",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mp, err := m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 60})
	if err != nil {
		t.Fatal(err)
	}
	first, cfg1, _ := tr.last()
	tr.setRefuse(true)
	first.fail(errors.New("accept: bad file descriptor"))

	// The error shows while the port cannot be listened again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := m.Status(mp.ID)
		if strings.Contains(s.Side1.Error, "bad file descriptor") && strings.Contains(s.Problem(), "port1") && tr.listens.Load() >= 3 {
			if s.Side1.Restarts != 0 {
				t.Errorf("Restarts = %d before any restart worked", s.Side1.Restarts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status does not show the stopped endpoint: %+v (%d listens)", s.Side1, tr.listens.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-first.closed:
	default:
		t.Error("the stopped endpoint was not closed")
	}
	tr.setRefuse(false)
	deadline = time.Now().Add(20 * time.Second)
	for {
		s, _ := m.Status(mp.ID)
		if s.Side1.Restarts == 1 && s.Side1.Error == "" && s.Problem() == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint not restarted: %+v", s.Side1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	second, cfg2, n := tr.last()
	if n != 2 || second == first {
		t.Fatalf("%d endpoints listened, want 2", n)
	}
	if cfg2.Addr != cfg1.Addr || cfg2.Passcode != cfg1.Passcode || cfg2.Passcode != mp.Passcode1 || cfg2.MaxLinks != cfg1.MaxLinks {
		t.Fatalf("restarted with %+v, want the same config as %+v", cfg2, cfg1)
	}
	// The relay's Open reaches the new endpoint.
	m.mu.RLock()
	ep := m.mappings[mp.ID].ep1
	m.mu.RUnlock()
	c, err := ep.Open(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n2, _ := c.Read(buf)
	c.Close()
	if string(buf[:n2]) != second.ln.Addr().String() {
		t.Fatalf("Open reached %q, want the new endpoint %s", buf[:n2], second.ln.Addr())
	}
	// Remove closes the restarted endpoint and stops supervising.
	if err := m.Remove(ctx(t), mp.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.closed:
	default:
		t.Error("Remove did not close the restarted endpoint")
	}
}

// brokenListener fails Accept for good once broken.
type brokenListener struct {
	net.Listener
	broken atomic.Bool
}

func (l *brokenListener) Accept() (net.Conn, error) {
	if l.broken.Load() {
		return nil, errors.New("accept: broken for good")
	}
	return l.Listener.Accept()
}

// TestPublicPortIsListenedAgain: a public port whose Accept fails for good
// is closed and listened again on the same address; status shows the
// error meanwhile.
func TestPublicPortIsListenedAgain(t *testing.T) {
	timer := time.AfterFunc(time.Minute, func() { panic("TestPublicPortIsListenedAgain hung") })
	defer timer.Stop()
	m := &Manager{log: slog.New(slog.DiscardHandler)}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := inner.Addr().String()
	bl := &brokenListener{Listener: inner}
	pl := m.relistening(bl, addr, m.log).(*publicListener)
	defer pl.Close()
	var relistens atomic.Int32
	pl.listen = func(ctx context.Context) (net.Listener, error) {
		if relistens.Add(1) < 3 {
			return nil, errors.New("not yet")
		}
		return m.listenPublic(ctx, addr)
	}
	bl.broken.Store(true)
	accepted := make(chan error, 1)
	go func() {
		c, err := pl.Accept()
		if c != nil {
			c.Close()
		}
		accepted <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e, _ := pl.health(); strings.Contains(e, "broken for good") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken public port shows no error")
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("public port not listened again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("Accept after the restart = %v", err)
	}
	if e, n := pl.health(); e != "" || n != 1 {
		t.Fatalf("health after restart = %q, %d restarts; want none and 1", e, n)
	}
}
