package tcp_test

// The tcp transport's agent side under the real agent (sdk/agent). The
// checks that hold over any transport are sdk/transporttest's
// AgentPublic, AgentPrivate and AgentProxyHeader (sdk/agent runs them over
// its reference transport); here they run over tcp, and the pool growth
// test, which needs tcp's lazy shared session (one connection per stream,
// links dialled as the pool asks), is tcp's own. Helpers are prefixed
// "as" to stay clear of the package's other test helpers.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/tcp"
)

func asTransport(t *testing.T) *tcp.Transport {
	t.Helper()
	tr, err := tcp.New(tcp.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestAgentSidePublicReconnects (was sdk/agent TestRunPublicReconnects/tcp):
// the agent starts before the connector listens, connects once it does,
// and reconnects after the connector restarts; cancelling its context
// stops it and returns nil.
func TestAgentSidePublicReconnects(t *testing.T) {
	transporttest.AgentPublic(t, asTransport(t), transporttest.Options{})
}

// TestAgentSidePrivateListen (was sdk/agent TestRunPrivateListen/tcp):
// each local connection accepted on Listen reaches the connector as a
// stream from Endpoint.Accept, both ways.
func TestAgentSidePrivateListen(t *testing.T) {
	transporttest.AgentPrivate(t, asTransport(t), transporttest.Options{})
}

// TestAgentSideWritesProxyHeader (was sdk/agent
// TestRunPublicWritesProxyHeader over tcp): for a stream whose origin the
// connector sent over tcp, the agent writes a PROXY header of the origin's
// version with the client's and the local address, exactly, before the
// client's bytes; a stream without an origin gets none.
func TestAgentSideWritesProxyHeader(t *testing.T) {
	transporttest.AgentProxyHeader(t, asTransport(t), transporttest.Options{})
}

func asWatchdog(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { panic(t.Name() + ": watchdog: ran over " + d.String()) })
	t.Cleanup(func() { timer.Stop() })
}

// asEchoOnce writes msg to c and reads it back.
func asEchoOnce(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo differs: " + string(got))
	}
	return nil
}

// asOpenEcho opens a stream from ep and checks that msg comes back.
func asOpenEcho(ctx context.Context, ep sdk.Endpoint, msg string) error {
	c, err := ep.Open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return asEchoOnce(c, msg)
}

// asLogger sends the agent's log lines to t.Log, shown when the test fails.
func asLogger(t *testing.T, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(asLogWriter{t}, &slog.HandlerOptions{Level: level}))
}

type asLogWriter struct{ t *testing.T }

func (l asLogWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// asWaitIdle waits up to 10s for ep to hold want idle links and fails the
// test if it ever holds more than most.
func asWaitIdle(t *testing.T, ep sdk.Endpoint, want, most int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := ep.(sdk.StatsReporter).Stats().IdleLinks
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

// TestAgentSidePoolGrowsAndShrinks (was sdk/agent
// TestRunPublicPoolGrowsAndShrinks): on tcp (one connection per stream,
// one lazy session shared by the pool) the agent's pool grows while
// clients take links as soon as they come, up to MaxPool, and drops the
// links it added once they waited PoolIdle without a client, back to Pool.
func TestAgentSidePoolGrowsAndShrinks(t *testing.T) {
	asWatchdog(t, time.Minute)
	tr := asTransport(t)
	ep, addr := transporttest.Listen(t, tr, "", sdk.EndpointConfig{Passcode: "pc", Mode: sdk.ModePublic})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		stopped <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial:  sdk.DialConfig{Addr: addr, Passcode: "pc"},
			Local: transporttest.EchoService(t), Pool: 2, MaxPool: 6, PoolIdle: 500 * time.Millisecond,
			Logger: asLogger(t, slog.LevelInfo),
		})
	}()
	asWaitIdle(t, ep, 2, 2)
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
		if n := ep.(sdk.StatsReporter).Stats().IdleLinks; n > 6 {
			t.Fatalf("%d idle links after %d opens, want at most MaxPool 6", n, i+1)
		}
	}
	asWaitIdle(t, ep, 6, 6)
	for i, c := range held {
		if err := asEchoOnce(c, "held"); err != nil {
			t.Fatalf("held stream %d: %v", i, err)
		}
	}
	// Without clients the links added wait PoolIdle and go.
	asWaitIdle(t, ep, 2, 6)
	if err := asOpenEcho(ctx, ep, "after"); err != nil {
		t.Fatal(err)
	}
}
