package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// observedEndpoint opens each stream by dialling a real service (or takes
// it from open) and records what the relay tells it of stream ends.
type observedEndpoint struct {
	addr   string
	open   chan net.Conn // when addr is empty
	accept chan net.Conn

	mu     sync.Mutex
	opened []net.Conn
	closed map[net.Conn]int
}

func newObservedEndpoint(addr string) *observedEndpoint {
	return &observedEndpoint{addr: addr, open: make(chan net.Conn, 16), accept: make(chan net.Conn, 16), closed: map[net.Conn]int{}}
}

func (e *observedEndpoint) Open(ctx context.Context) (net.Conn, error) {
	var c net.Conn
	if e.addr != "" {
		var d net.Dialer
		var err error
		if c, err = d.DialContext(ctx, "tcp", e.addr); err != nil {
			return nil, err
		}
	} else {
		select {
		case c = <-e.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	e.opened = append(e.opened, c)
	e.mu.Unlock()
	return c, nil
}

func (e *observedEndpoint) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-e.accept:
		e.mu.Lock()
		e.opened = append(e.opened, c)
		e.mu.Unlock()
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *observedEndpoint) StreamClosed(c net.Conn) {
	e.mu.Lock()
	e.closed[c]++
	e.mu.Unlock()
}

// ends checks that every stream handed out was reported closed exactly
// once, and returns how many were handed out.
func (e *observedEndpoint) ends() (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.opened {
		if n := e.closed[c]; n != 1 {
			return len(e.opened), fmt.Errorf("stream %v reported closed %d times, want 1", c.LocalAddr(), n)
		}
	}
	if len(e.closed) != len(e.opened) {
		return len(e.opened), fmt.Errorf("%d streams reported closed, %d handed out", len(e.closed), len(e.opened))
	}
	return len(e.opened), nil
}

func (e *observedEndpoint) handedOut() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.opened)
}

// echoes reports whether c echoes a byte within d.
func echoes(c net.Conn, d time.Duration) bool {
	if _, err := c.Write([]byte{'x'}); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	_, err := io.ReadFull(c, make([]byte, 1))
	return err == nil
}

// TestPublicLimitHoldsClientsBeyondIt: at maxconnections 2, of 5 clients
// exactly 2 are relayed at once and no stream is opened for the others,
// which wait and are relayed as relayed ones end; every stream's end is
// reported to the endpoint once, and the count returns to zero.
func TestPublicLimitHoldsClientsBeyondIt(t *testing.T) {
	watchdog(t)
	ep := newObservedEndpoint(echoServer(t))
	var counters Counters
	limit := NewLimit(2)
	addr, stop := servePublic(t, ep, PublicConfig{Counters: &counters, Limit: limit, WaitTimeout: 30 * time.Second})
	defer stop()
	var clients []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	eventually(t, "2 relayed, 3 waiting", func() error {
		if err := want("Active", &counters.Active, 2); err != nil {
			return err
		}
		return want("Waiting", &counters.Waiting, 3)
	})
	time.Sleep(100 * time.Millisecond) // room for a wrong extra Open
	if n := limit.Held(); n != 2 {
		t.Errorf("Held = %d, want 2", n)
	}
	if n := ep.handedOut(); n != 2 {
		t.Errorf("%d streams opened at maxconnections 2, want 2", n)
	}
	// Clients are served in some order: find the relayed ones.
	var relayed, waiting []net.Conn
	for _, c := range clients {
		if echoes(c, 300*time.Millisecond) {
			relayed = append(relayed, c)
		} else {
			waiting = append(waiting, c)
		}
	}
	if len(relayed) != 2 {
		t.Fatalf("%d clients relayed at maxconnections 2, want 2", len(relayed))
	}
	// Each relayed client that leaves lets one waiting client in; the
	// bytes it sent while waiting are not lost.
	for _, c := range relayed {
		c.Close()
	}
	// The byte each wrote while waiting comes back once it is relayed;
	// each then leaves, letting the last one in.
	var wg sync.WaitGroup
	errs := make(chan error, len(waiting))
	for _, c := range waiting {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				errs <- fmt.Errorf("waiting client never relayed: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, "the 3 others relayed", func() error { return want("Total", &counters.Total, 5) })
	eventually(t, "every stream ended", func() error {
		if n := limit.Held(); n != 0 {
			return fmt.Errorf("Held = %d", n)
		}
		return want("Active", &counters.Active, 0)
	})
	if n, err := ep.ends(); err != nil || n != 5 {
		t.Errorf("streams handed out %d (want 5), ends: %v", n, err)
	}
	if got := counters.Refused.Load(); got != 0 {
		t.Errorf("Refused = %d, want 0", got)
	}
}

// TestPublicLimitRefusesAfterWaitTimeout: a client that finds the limit
// reached for the whole wait timeout is closed and counted at the limit,
// not as "no agent".
func TestPublicLimitRefusesAfterWaitTimeout(t *testing.T) {
	watchdog(t)
	ep := newObservedEndpoint(echoServer(t))
	var counters Counters
	limit := NewLimit(1)
	addr, stop := servePublic(t, ep, PublicConfig{Counters: &counters, Limit: limit, WaitTimeout: 300 * time.Millisecond})
	defer stop()
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if !echoes(first, 10*time.Second) {
		t.Fatal("first client not relayed")
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := second.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("second client at maxconnections 1: read = %v, want EOF (closed)", err)
	}
	eventually(t, "refusal counted", func() error {
		if err := want("RefusedAtLimit", &counters.RefusedAtLimit, 1); err != nil {
			return err
		}
		if err := want("RefusedNoAgent", &counters.RefusedNoAgent, 0); err != nil {
			return err
		}
		return want("Refused", &counters.Refused, 1)
	})
	if n := ep.handedOut(); n != 1 {
		t.Errorf("%d streams opened, want 1 (none for the refused client)", n)
	}
	if !echoes(first, 10*time.Second) {
		t.Error("first client no longer relayed")
	}
}

// TestPrivateLimitClosesStreamBeyondSide: at maxconnectionsport1 1, a
// second stream an agent starts on side 1 while the first is relayed is
// closed at once and counted; once the first ends, a new one is relayed.
func TestPrivateLimitClosesStreamBeyondSide(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newObservedEndpoint(""), newObservedEndpoint("")
	var counters Counters
	limits := [2]*Limit{NewLimit(1), NewLimit(1)}
	stop := servePrivate(t, ep1, ep2, PrivateConfig{Counters: &counters, Limits: limits})
	defer stop()

	agentB, linkB := tcpPair(t)
	ep2.open <- linkB
	agentA, streamA := tcpPair(t)
	ep1.accept <- streamA
	exchange(t, agentA, agentB)

	agentA2, streamA2 := tcpPair(t)
	ep1.accept <- streamA2
	agentA2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := agentA2.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("second stream on side 1 at maxconnectionsport1 1: read = %v, want EOF", err)
	}
	eventually(t, "refusal counted", func() error { return want("RefusedAtLimit", &counters.RefusedAtLimit, 1) })
	if h1, h2 := limits[0].Held(), limits[1].Held(); h1 != 1 || h2 != 1 {
		t.Errorf("Held = %d, %d; want 1, 1", h1, h2)
	}
	exchange(t, agentA, agentB) // the first pair is untouched

	agentA.Close() // a relay ends once both directions ended
	agentB.Close()
	eventually(t, "pair ended", func() error {
		if h1, h2 := limits[0].Held(), limits[1].Held(); h1 != 0 || h2 != 0 {
			return fmt.Errorf("Held = %d, %d", h1, h2)
		}
		return nil
	})
	agentC, linkC := tcpPair(t)
	ep2.open <- linkC
	agentA3, streamA3 := tcpPair(t)
	ep1.accept <- streamA3
	exchange(t, agentA3, agentC)
	agentA3.Close()
	agentC.Close()
	eventually(t, "second pair ended", func() error {
		if h1, h2 := limits[0].Held(), limits[1].Held(); h1 != 0 || h2 != 0 {
			return fmt.Errorf("Held = %d, %d", h1, h2)
		}
		return nil
	})
	for i, ep := range []*observedEndpoint{ep1, ep2} {
		if _, err := ep.ends(); err != nil {
			t.Errorf("side %d: %v", i+1, err)
		}
	}
}

// TestPrivateOpenWaitsForPlaceOnOtherSide: a stream waiting on side 1
// gets no partner opened on side 2 while side 2 holds its cap; once a
// side-2 stream ends, its partner is opened.
func TestPrivateOpenWaitsForPlaceOnOtherSide(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newObservedEndpoint(""), newObservedEndpoint("")
	limits := [2]*Limit{NewLimit(2), NewLimit(1)}
	stop := servePrivate(t, ep1, ep2, PrivateConfig{Limits: limits})
	defer stop()

	agentB, linkB := tcpPair(t)
	ep2.open <- linkB
	agentA, streamA := tcpPair(t)
	ep1.accept <- streamA
	exchange(t, agentA, agentB)

	agentB2, linkB2 := tcpPair(t)
	ep2.open <- linkB2
	agentA2, streamA2 := tcpPair(t)
	ep1.accept <- streamA2
	time.Sleep(300 * time.Millisecond)
	if n := len(ep2.open); n != 1 {
		t.Fatalf("a partner was opened on side 2 at its maxconnectionsport2 1 (%d links left, want 1)", n)
	}
	if h := limits[0].Held(); h != 2 {
		t.Errorf("side 1 Held = %d, want 2 (one relayed, one waiting)", h)
	}
	agentA.Close()
	agentB.Close()
	exchange(t, agentA2, agentB2)
	if h1, h2 := limits[0].Held(), limits[1].Held(); h1 != 1 || h2 != 1 {
		t.Errorf("Held = %d, %d; want 1, 1", h1, h2)
	}
}

// TestPrivateLimitDropsGoneWaiterForNewStream: at maxconnectionsport1 1,
// a stream whose agent is gone while it waits does not keep the place
// from its agent's next stream.
func TestPrivateLimitDropsGoneWaiterForNewStream(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newObservedEndpoint(""), newObservedEndpoint("")
	var counters Counters
	limits := [2]*Limit{NewLimit(1), NewLimit(1)}
	stop := servePrivate(t, ep1, ep2, PrivateConfig{Counters: &counters, Limits: limits})
	defer stop()
	_, streamA := tcpPair(t)
	ep1.accept <- streamA
	eventually(t, "first stream held", func() error {
		if limits[0].Held() != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	streamA.Close() // as a transport closes the stream of a dead agent
	agentA2, streamA2 := tcpPair(t)
	ep1.accept <- streamA2
	agentB, linkB := tcpPair(t)
	ep2.open <- linkB
	exchange(t, agentA2, agentB)
	if got := counters.RefusedAtLimit.Load(); got != 0 {
		t.Errorf("RefusedAtLimit = %d, want 0", got)
	}
}

// TestLimitZeroCountsWithoutCap: a zero limit caps nothing and still
// counts; a nil one does neither and never blocks.
func TestLimitZeroCountsWithoutCap(t *testing.T) {
	l := NewLimit(0)
	for range 100 {
		if !l.tryAcquire() {
			t.Fatal("zero limit refused")
		}
	}
	if l.Held() != 100 || l.Max() != 0 {
		t.Errorf("Held, Max = %d, %d", l.Held(), l.Max())
	}
	var nl *Limit
	if !nl.tryAcquire() || nl.acquire(context.Background()) != nil || nl.Held() != 0 {
		t.Error("nil limit")
	}
	nl.release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	one := NewLimit(1)
	one.tryAcquire()
	if err := one.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire at the limit = %v, want deadline exceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- one.acquire(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	one.release()
	if err := <-done; err != nil || one.Held() != 1 {
		t.Errorf("acquire after release = %v, Held %d", err, one.Held())
	}
}
