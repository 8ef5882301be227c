package agent_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/transports/tcp"
)

// idleLinks returns the idle links ep holds.
func idleLinks(ep sdk.Endpoint) int { return ep.(sdk.StatsReporter).Stats().IdleLinks }

// waitIdle waits up to 10s for ep to hold want idle links and fails the
// test if it ever holds more than most.
func waitIdle(t *testing.T, ep sdk.Endpoint, want, most int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := idleLinks(ep)
		if n > most {
			t.Fatalf("%d idle links, want at most %d", n, most)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle links after 10s, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunPublicPoolGrowsAndShrinks: on tcp (one connection per stream)
// the agent's pool grows while clients take links as soon as they come,
// up to MaxPool, and drops the links it added once they waited PoolIdle
// without a client, back to Pool.
func TestRunPublicPoolGrowsAndShrinks(t *testing.T) {
	watchdog(t, time.Minute)
	tr, err := tcp.New(tcp.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ep := listen(t, tr, addr, sdk.ModePublic)
	t.Cleanup(func() { ep.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		stopped <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial:  sdk.DialConfig{Addr: addr, Passcode: "pc"},
			Local: echo(t), Pool: 2, MaxPool: 6, PoolIdle: 500 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(&logBuf{t: t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		})
	}()
	waitIdle(t, ep, 2, 2)
	// Clients that keep their streams and come one after another take
	// each link as it comes: the pool grows, to MaxPool and no further.
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := range 24 {
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := ep.Open(octx)
		ocancel()
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		held = append(held, c)
		if n := idleLinks(ep); n > 6 {
			t.Fatalf("%d idle links after %d opens, want at most MaxPool 6", n, i+1)
		}
	}
	waitIdle(t, ep, 6, 6)
	for i, c := range held {
		if err := echoOnce(c, "held"); err != nil {
			t.Fatalf("held stream %d: %v", i, err)
		}
	}
	// Without clients the links added wait PoolIdle and go.
	waitIdle(t, ep, 2, 6)
	if err := openEcho(ctx, ep, "after"); err != nil {
		t.Fatal(err)
	}
}

// echoOnce writes msg to c and reads it back.
func echoOnce(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	if err == nil && string(got) != msg {
		err = errors.New("echo differs")
	}
	return err
}
