package relay

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// waitEnds reads c until it ends and fails the test if it is still open
// after limit.
func waitEnds(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open %s after it went idle", limit)
	}
}

func TestPublicIdleTimeoutClosesIdleClient(t *testing.T) {
	watchdog(t)
	var counters Counters
	addr, stop := servePublic(t, dialEndpoint{echoServer(t)}, PublicConfig{Counters: &counters, IdleTimeout: 300 * time.Millisecond})
	defer stop()
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	buf := make([]byte, 1)
	for _, c := range []net.Conn{idle, busy} {
		c.Write([]byte("x"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	// busy echoes a byte every 50 ms for 1.5 s, five idle timeouts.
	for range 30 {
		time.Sleep(50 * time.Millisecond)
		busy.Write([]byte("y"))
		if _, err := io.ReadFull(busy, buf); err != nil {
			t.Fatalf("active client closed: %v", err)
		}
	}
	waitEnds(t, idle, 10*time.Second) // long closed by now
	waitActive(t, &counters, 1)       // the busy client
	waitEnds(t, busy, 10*time.Second)
	waitActive(t, &counters, 0)
}

// waitActive waits up to 10 s for c.Active to be want.
func waitActive(t *testing.T, c *Counters, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Active.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Active = %d, want %d", c.Active.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPrivateIdleTimeoutClosesBothAgents(t *testing.T) {
	watchdog(t)
	ep1, ep2 := newChanEndpoint(), newChanEndpoint()
	var counters Counters
	stop := servePrivate(t, ep1, ep2, PrivateConfig{Counters: &counters, IdleTimeout: 300 * time.Millisecond})
	defer stop()
	agentA, linkA := tcpPair(t)
	agentB, linkB := tcpPair(t)
	ep1.accept <- linkA
	ep2.accept <- linkB
	exchange(t, agentA, agentB)
	waitEnds(t, agentA, 10*time.Second)
	waitEnds(t, agentB, 10*time.Second)
	waitActive(t, &counters, 0)
}
