package tcp_test

// Protocol version 4 (issue 12): the connector hands a pool link out right
// after writing the bind frame, without waiting for an acknowledgement;
// agents and connectors of version 3 keep working with it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/transports/tcp"
)

// TestV4BindWithoutAck plays a version 4 agent byte by byte. The
// connector beats its idle link and the agent echoes; a bind that comes
// while an echo is due waits for it, so the echo never reaches the
// stream. Open returns without any acknowledgement; the bytes the
// connector writes right after Open follow the bind frame on the link, and
// the agent's first bytes after the bind reach the stream whole. A second
// link whose agent closes it after the bind (its service is down) is a
// stream that ends.
func TestV4BindWithoutAck(t *testing.T) {
	watchdog(t, time.Minute)
	const th = time.Second // the connector beats every 250 ms
	ep, addr := listenEP(t, newTransport(t), sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})
	ctx, cancel := context.WithTimeout(sdk.WithOrigin(context.Background(), testOrigin), 20*time.Second)
	defer cancel()

	a := newRawAgent(addr, "pc")
	end := a.control(t, th/4)
	defer end("bye")
	link, ans := a.hello(t, 4, 'P')
	if len(ans) != 5 || ans[0] != 0 {
		t.Fatalf("v4 pool hello answered %x, want 00 and the threshold", ans)
	}
	b := make([]byte, 1)
	for i := range 3 { // the connector's beats, echoed: the link lives past the threshold
		link.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(link, b); err != nil || b[0] != 'H' {
			t.Fatalf("beat %d from the connector: %q, %v", i, b, err)
		}
		if i < 2 {
			time.Sleep(th / 2)
			link.Write(b)
		}
	}
	// The third beat is not echoed yet: a bind must wait for its echo.
	type res struct {
		c   net.Conn
		err error
	}
	opened := make(chan res, 1)
	go func() {
		c, err := ep.Open(ctx)
		opened <- res{c, err}
	}()
	link.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := link.Read(b); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connector sent %q (%v) while the echo of its beat was due; want nothing until the echo", b[:n], err)
	}
	link.Write([]byte{'H'}) // the echo, now
	r := <-opened
	if r.err != nil {
		t.Fatalf("Open of a v4 link with no ack ever sent: %v", r.err)
	}
	c := r.c
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("Open returned %T, want the bare *net.TCPConn", c)
	}
	if _, err := c.Write([]byte("client")); err != nil {
		t.Fatal(err)
	}
	wantOrigin, _ := testOrigin.AppendBinary(nil)
	want := append([]byte{'B', byte(len(wantOrigin))}, wantOrigin...)
	want = append(want, "client"...)
	got := make([]byte, len(want))
	link.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(link, got); err != nil || string(got) != string(want) {
		t.Fatalf("link carried %q, %v after the echo; want the bind frame and the client's bytes %q", got, err, want)
	}
	if _, err := link.Write([]byte("service")); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len("service"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "service" {
		t.Fatalf("the stream read %q, %v; want exactly the service's bytes (no beat echo, nothing lost to the idle reader)", got, err)
	}
	time.Sleep(th / 2) // a bound link gets no beats
	link.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := link.Read(b); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connector sent %q (%v) on a bound link", b[:n], err)
	}

	// The agent cannot reach its service: it closes the link after the bind.
	link2, _ := a.hello(t, 4, 'P')
	bound := make(chan error, 1)
	go func() { // the agent: echo beats until the bind, then close
		b := make([]byte, 1)
		link2.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := io.ReadFull(link2, b); err != nil {
				bound <- err
				return
			}
			switch b[0] {
			case 'H':
				link2.Write(b)
				continue
			case 'B':
				if _, err := io.ReadFull(link2, b); err != nil || b[0] != 0 {
					bound <- fmt.Errorf("bind origin length %d, %v; want 0", b[0], err)
					return
				}
				link2.Close()
				bound <- nil
			default:
				bound <- fmt.Errorf("frame %q on an idle link", b)
			}
			return
		}
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	c2, err := ep.Open(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := <-bound; err != nil {
		t.Fatalf("second link: %v", err)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stream of a link its agent closed after the bind: read %d, %v; want it ended", n, err)
	}
	transportStreamClosed(ep, c2)
	transportStreamClosed(ep, c)
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 0 || st.Streams != 0 {
		t.Errorf("Stats() = %+v after both streams were reported closed, want Links 0, Streams 0", st)
	}
}

func transportStreamClosed(ep sdk.Endpoint, c net.Conn) {
	c.Close()
	ep.(sdk.StreamObserver).StreamClosed(c)
}

// TestV4AgentV3Connector: our agent against a connector of protocol
// version 3 falls back to version 3 (acknowledged binds), quietly, and
// keeps origins, heartbeats and its control link.
func TestV4AgentV3Connector(t *testing.T) {
	watchdog(t, time.Minute)
	old, err := tcp.NewWithVersion(tcp.Config{}, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	ep, addr := listenEP(t, old, sdk.EndpointConfig{Passcode: "pc"})
	var logs syncBuffer
	s, err := newTransport(t).Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(sdk.WithOrigin(context.Background(), testOrigin), 20*time.Second)
	defer cancel()
	for range 3 {
		c := bindOnce(t, ctx, ep, s)
		if o, ok := originOf(c); !ok || o != testOrigin {
			t.Fatalf("origin over a version 3 connector: %+v, %v; want %+v", o, ok, testOrigin)
		}
	}
	if logs.String() != "" {
		t.Errorf("falling back to version 3 logged at Info or above:\n%s", logs.String())
	}
}

// TestV3AgentV4Connector: an agent of protocol version 3 (it acknowledges
// binds) works with this connector, origins included, and its
// acknowledgement is not taken for its service's bytes.
func TestV3AgentV4Connector(t *testing.T) {
	watchdog(t, time.Minute)
	ep, addr := listenEP(t, newTransport(t), sdk.EndpointConfig{Passcode: "pc"})
	old, err := tcp.NewWithVersion(tcp.Config{}, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	s, err := old.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(sdk.WithOrigin(context.Background(), testOrigin), 20*time.Second)
	defer cancel()
	for range 3 {
		c := bindOnce(t, ctx, ep, s)
		if o, ok := originOf(c); !ok || o != testOrigin {
			t.Fatalf("origin to a version 3 agent: %+v, %v; want %+v", o, ok, testOrigin)
		}
	}
}

// echoUntilBind plays the agent of a version 4 idle link: it echoes the
// connector's beats until the bind frame (whose origin it reads), and
// reports the bind's error, nil once bound.
func echoUntilBind(link net.Conn) <-chan error {
	bound := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		link.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := io.ReadFull(link, b); err != nil {
				bound <- err
				return
			}
			switch b[0] {
			case 'H':
				link.Write(b)
				continue
			case 'B':
				_, err := io.ReadFull(link, b) // origin length: none here
				if err == nil && b[0] != 0 {
					err = fmt.Errorf("bind origin of %d bytes, want none", b[0])
				}
				link.SetReadDeadline(time.Time{})
				bound <- err
			default:
				bound <- fmt.Errorf("frame %q on an idle link", b)
			}
			return
		}
	}()
	return bound
}

// TestV4BindEchoNeverComes: a version 4 link whose agent does not echo
// the beat that is due when a bind comes is dropped after BindTimeout,
// and Open binds the next link instead of hanging on it.
func TestV4BindEchoNeverComes(t *testing.T) {
	watchdog(t, time.Minute)
	tr, err := tcp.New(tcp.Config{BindTimeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: 5 * time.Second})
	a := newRawAgent(addr, "pc")
	end := a.control(t, time.Second)
	defer end("bye")
	mute, _ := a.hello(t, 4, 'P')
	b := make([]byte, 1)
	mute.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(mute, b); err != nil || b[0] != 'H' {
		t.Fatalf("the connector's first beat: %q, %v", b, err)
	}
	// mute never echoes; a second link does.
	live, _ := a.hello(t, 4, 'P')
	bound := echoUntilBind(live)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatalf("Open with one mute and one live link: %v", err)
	}
	defer c.Close()
	if err := <-bound; err != nil {
		t.Fatalf("the live link: %v", err)
	}
	if err := pingPong(c, live); err != nil {
		t.Fatalf("the stream bound on the live link: %v", err)
	}
	mute.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := mute.Read(b); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the mute link: read %q, %v; want it closed by the connector", b[:n], err)
	}
}
