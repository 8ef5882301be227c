package quic

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// TestMigration rebinds the agent's UDP socket mid-session (QUIC
// connection migration: a new local socket, probed, then switched to) and checks that a stream open across the move
// and a new stream after it both carry bytes, and that the connector sees
// the agent's new address.
func TestMigration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	epi, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw", HeartbeatThreshold: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer epi.Close()
	ep := epi.(*muxkit.Endpoint)
	si, err := tr.Dial(ctx, sdk.DialConfig{Addr: ep.Addr().String(), Passcode: "pw", HeartbeatThreshold: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer si.Close()
	qc := si.(*muxkit.Session).Conn().(*qmux).c
	oldAddr := qc.LocalAddr().String()

	c, a := pair(ctx, t, ep, si)
	defer c.Close()
	defer a.Close()
	echo(t, c, a, "before the move")

	// The agent moves to a new UDP socket (a new local port, as after a
	// NAT rebinding or an interface change).
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	newTr := &quicgo.Transport{Conn: pc}
	defer func() { newTr.Close(); pc.Close() }()
	path, err := qc.AddPath(newTr)
	if err != nil {
		t.Fatalf("AddPath: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := path.Probe(pctx); err != nil {
		t.Fatalf("probing the new path: %v", err)
	}
	if err := path.Switch(); err != nil {
		t.Fatalf("switching to the new path: %v", err)
	}
	// quic-go sends nothing more on the old path once switched; the old
	// socket stays bound (it belongs to the session's quic.Transport) but
	// is unused, which the connector's view of the agent address shows.

	echo(t, c, a, "after the move, same stream")
	c2, a2 := pair(ctx, t, ep, si)
	defer c2.Close()
	defer a2.Close()
	echo(t, c2, a2, "after the move, new stream")
	// The connector adopts the new peer address once it has validated the
	// new path, which may take a few more packets.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := connectorPeer(ctx, t, ep, si)
		if got == pc.LocalAddr().String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connector sees the agent at %s after the move, want the new socket %s (old %s)", got, pc.LocalAddr(), oldAddr)
		}
		echo(t, c2, a2, "waiting for the connector to adopt the new path")
		time.Sleep(50 * time.Millisecond)
	}
	echo(t, c, a, "after the connector adopted the new path")
}

func pair(ctx context.Context, t *testing.T, ep sdk.Endpoint, s sdk.Session) (net.Conn, net.Conn) {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		a, err := s.Accept(ctx)
		ch <- res{a, err}
	}()
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	return c, r.c
}

func echo(t *testing.T, c, a net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	a.SetDeadline(time.Now().Add(15 * time.Second))
	for _, dir := range [][2]net.Conn{{c, a}, {a, c}} {
		if _, err := dir[0].Write([]byte(msg)); err != nil {
			t.Fatalf("%s: write: %v", msg, err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(dir[1], buf); err != nil {
			t.Fatalf("%s: read: %v", msg, err)
		}
		if string(buf) != msg {
			t.Fatalf("%s: read %q", msg, buf)
		}
	}
}

// connectorPeer returns the agent address the endpoint's only link sees
// now: the peer address of a stream opened on it (a stream takes its
// addresses from the connection when it is made).
func connectorPeer(ctx context.Context, t *testing.T, ep sdk.Endpoint, s sdk.Session) string {
	t.Helper()
	c, a := pair(ctx, t, ep, s)
	defer c.Close()
	defer a.Close()
	return c.RemoteAddr().String()
}
