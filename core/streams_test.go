package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

// unboundedTransport plays a multiplexing transport: its endpoints open
// as many streams as asked (each a connection to a real echo service),
// never refuse one, report a wrong stream count, and observe stream ends.
type unboundedTransport struct {
	echo string

	mu     sync.Mutex
	eps    []*unboundedEndpoint
	maxLnk []int
}

func (t *unboundedTransport) Name() string { return "unbounded" }

func (t *unboundedTransport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	ep := &unboundedEndpoint{ln: ln, echo: t.echo, closed: map[net.Conn]int{}}
	t.mu.Lock()
	t.eps = append(t.eps, ep)
	t.maxLnk = append(t.maxLnk, cfg.MaxLinks)
	t.mu.Unlock()
	return ep, nil
}

func (t *unboundedTransport) Dial(context.Context, sdk.DialConfig) (sdk.Session, error) {
	return nil, errors.ErrUnsupported
}

type unboundedEndpoint struct {
	ln   net.Listener
	echo string

	mu     sync.Mutex
	opened int
	closed map[net.Conn]int
}

func (e *unboundedEndpoint) Open(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", e.echo)
	if err == nil {
		e.mu.Lock()
		e.opened++
		e.mu.Unlock()
	}
	return c, err
}

func (e *unboundedEndpoint) Accept(ctx context.Context) (net.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (e *unboundedEndpoint) Close() error { return e.ln.Close() }

func (e *unboundedEndpoint) Stats() sdk.EndpointStats {
	return sdk.EndpointStats{Links: 1, Streams: 999}
}

func (e *unboundedEndpoint) StreamClosed(c net.Conn) {
	e.mu.Lock()
	e.closed[c]++
	e.mu.Unlock()
}

func (e *unboundedEndpoint) counts() (opened, closed int, twice bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.closed {
		twice = twice || n != 1
	}
	return e.opened, len(e.closed), twice
}

// TestManagerLimitsStreamsOnAnyTransport: over a transport that would
// open any number of streams, a public mapping at maxconnections 2 holds
// exactly 2 at once; the status shows the core's own exact stream count
// (not the transport's), the transport is told each stream's end once,
// and MaxLinks is the same number (the transport's link cap).
func TestManagerLimitsStreamsOnAnyTransport(t *testing.T) {
	echoLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echoLn.Close()
	go func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	dir := t.TempDir()
	st, _, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr := &unboundedTransport{echo: echoLn.Addr().String()}
	m, err := New(Config{
		BindHost: "127.0.0.1", Ports: ports.New(freePorts(t, 4)), Store: st,
		Transports: map[string]sdk.Transport{"unbounded": tr}, DefaultTransport: "unbounded",
		PublicWaitTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mp, err := m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 2, Heartbeat1: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.maxLnk) != 1 || tr.maxLnk[0] != 2 {
		t.Errorf("MaxLinks given to the transport = %v, want [2]", tr.maxLnk)
	}
	ep := tr.eps[0]
	public := net.JoinHostPort("127.0.0.1", strconv.Itoa(mp.Port2))
	var clients []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", public)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	wait := func(what string, cond func(MappingStatus) error) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			s, err := m.Status(mp.ID)
			if err == nil {
				err = cond(s)
			}
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("2 relayed, 2 waiting", func(s MappingStatus) error {
		if s.Side1.Streams != 2 || s.Active != 2 || s.Waiting != 2 {
			return fmt.Errorf("streams %d, active %d, waiting %d", s.Side1.Streams, s.Active, s.Waiting)
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond)
	if opened, _, _ := ep.counts(); opened != 2 {
		t.Errorf("the transport was asked for %d streams at maxconnections 2, want 2", opened)
	}
	for _, c := range clients {
		c.Close()
	}
	wait("all ended", func(s MappingStatus) error {
		opened, closed, twice := ep.counts()
		if s.Side1.Streams != 0 || s.Active != 0 || s.Total != 4 || opened != 4 || closed != 4 || twice {
			return fmt.Errorf("streams %d, active %d, total %d; opened %d, reported closed %d (twice: %v)", s.Side1.Streams, s.Active, s.Total, opened, closed, twice)
		}
		return nil
	})
}
