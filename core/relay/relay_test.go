package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// chanEndpoint hands out the streams pushed into its channels.
type chanEndpoint struct {
	open   chan net.Conn
	accept chan net.Conn
}

func newChanEndpoint() *chanEndpoint {
	return &chanEndpoint{open: make(chan net.Conn, 16), accept: make(chan net.Conn, 16)}
}

func (e *chanEndpoint) Open(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-e.open:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *chanEndpoint) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-e.accept:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialEndpoint opens each stream by dialling a real service.
type dialEndpoint struct{ addr string }

func (e dialEndpoint) Open(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", e.addr)
}

func watchdog(t *testing.T) {
	t.Helper()
	timer := time.AfterFunc(time.Minute, func() { panic("test " + t.Name() + " hung") })
	t.Cleanup(func() { timer.Stop() })
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// echoServer echoes every connection until EOF, then closes it.
func echoServer(t *testing.T) string {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// tcpPair returns two ends of one loopback connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	ln := listen(t)
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func servePublic(t *testing.T, ep Opener, cfg PublicConfig) (addr string, stop func()) {
	t.Helper()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePublic(ctx, ln, ep, cfg) }()
	return ln.Addr().String(), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServePublic = %v", err)
		}
	}
}

func TestPublicRelaysEachClientOverItsOwnStream(t *testing.T) {
	watchdog(t)
	var counters Counters
	addr, stop := servePublic(t, dialEndpoint{echoServer(t)}, PublicConfig{Counters: &counters})
	defer stop()

	const clients = 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte(fmt.Sprintf("client %d;", i)), 20000)
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("client %d got %d bytes back, want its own %d", i, len(got), len(msg))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := counters.Total.Load(); got != clients {
		t.Errorf("Total = %d, want %d", got, clients)
	}
}

func TestPublicClientWaitsForLinkAndLosesNoBytes(t *testing.T) {
	watchdog(t)
	ep := newChanEndpoint()
	addr, stop := servePublic(t, ep, PublicConfig{WaitTimeout: 10 * time.Second})
	defer stop()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	early := []byte("sent before any agent link existed")
	if _, err := c.Write(early); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the client is now waiting for a link
	agentSide, link := tcpPair(t)
	ep.open <- link
	got := make([]byte, len(early))
	agentSide.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(agentSide, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, early) {
		t.Fatalf("agent got %q, want %q", got, early)
	}
}

func TestPublicClientWithoutLinkIsClosed(t *testing.T) {
	watchdog(t)
	var counters Counters
	addr, stop := servePublic(t, newChanEndpoint(), PublicConfig{WaitTimeout: 100 * time.Millisecond, Counters: &counters})
	defer stop()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read = %v, want EOF", err)
	}
	if got := counters.Refused.Load(); got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}
}

func TestPublicShutdownClosesRelays(t *testing.T) {
	watchdog(t)
	var counters Counters
	addr, stop := servePublic(t, dialEndpoint{echoServer(t)}, PublicConfig{Counters: &counters})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	if got := counters.Active.Load(); got != 1 {
		t.Fatalf("Active = %d, want 1", got)
	}
	stop() // returns only once every relay is gone
	if got := counters.Active.Load(); got != 0 {
		t.Errorf("Active after shutdown = %d", got)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after shutdown = %v, want EOF", err)
	}
}

func servePrivate(t *testing.T, ep1, ep2 Endpoint, cfg PrivateConfig) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePrivate(ctx, ep1, ep2, cfg) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServePrivate = %v", err)
		}
	}
}

// exchange checks that bytes cross between a and b both ways.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, dir := range []struct{ from, to net.Conn }{{a, b}, {b, a}} {
		msg := []byte("across the private pipe")
		if _, err := dir.from.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		dir.to.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("got %q", got)
		}
	}
}

func TestPrivatePairsTwoAcceptedStreams(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newChanEndpoint(), newChanEndpoint()
	var counters Counters
	stop := servePrivate(t, ep1, ep2, PrivateConfig{Counters: &counters})
	defer stop()
	agentA, linkA := tcpPair(t)
	agentB, linkB := tcpPair(t)
	ep1.accept <- linkA
	time.Sleep(50 * time.Millisecond) // A waits alone first
	ep2.accept <- linkB
	exchange(t, agentA, agentB)
	if got := counters.Active.Load(); got != 1 {
		t.Errorf("Active = %d, want 1", got)
	}
}

func TestPrivatePairsAcceptedWithOpened(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newChanEndpoint(), newChanEndpoint()
	stop := servePrivate(t, ep1, ep2, PrivateConfig{})
	defer stop()
	// Side 2's agent has an idle link; side 1's agent starts a stream.
	agentB, linkB := tcpPair(t)
	ep2.open <- linkB
	agentA, streamA := tcpPair(t)
	ep1.accept <- streamA
	exchange(t, agentA, agentB)

	// And the other way round, for a stream started on side 2.
	agentC, linkC := tcpPair(t)
	ep1.open <- linkC
	agentD, streamD := tcpPair(t)
	ep2.accept <- streamD
	exchange(t, agentC, agentD)
}

func TestPrivateShutdownClosesWaitingStreams(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newChanEndpoint(), newChanEndpoint()
	stop := servePrivate(t, ep1, ep2, PrivateConfig{})
	agentA, linkA := tcpPair(t)
	ep1.accept <- linkA
	time.Sleep(50 * time.Millisecond)
	stop()
	agentA.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := agentA.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("waiting stream read after shutdown = %v, want EOF", err)
	}
}

// TestPrivateCountsBytesWhileLive checks that a private relay's byte
// counters (what status reports) move while its streams stay open, not
// only once the relay ends.
func TestPrivateCountsBytesWhileLive(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newChanEndpoint(), newChanEndpoint()
	var counters Counters
	stop := servePrivate(t, ep1, ep2, PrivateConfig{Counters: &counters})
	defer stop()
	agentA, linkA := tcpPair(t)
	agentB, linkB := tcpPair(t)
	ep1.accept <- linkA
	ep2.accept <- linkB
	exchange(t, agentA, agentB) // len("across the private pipe") each way
	want := int64(len("across the private pipe"))
	deadline := time.Now().Add(10 * time.Second)
	for counters.BytesUp.Load() != want || counters.BytesDown.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("live relay: BytesUp %d, BytesDown %d, want %d each", counters.BytesUp.Load(), counters.BytesDown.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	if got := counters.Active.Load(); got != 1 {
		t.Errorf("Active = %d, want 1: the relay should still be running", got)
	}
}
