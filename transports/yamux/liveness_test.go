package yamux_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/yamux"
)

// TestFrozenAgentEndsBoundStreams: with a 1s threshold, an agent whose
// path stalls (as a SIGSTOPped agent's does: nothing read, nothing
// written, TCP still up) loses its session within the threshold, and the
// connector's streams on it, idle and mid-transfer, end with
// ErrSessionLost rather than io.EOF, so that a relay closes both ends
// instead of half-closing the public client. The agent's own Dial config
// sets no timings: it keeps the session alive from the threshold the
// connector told it (checked first: idle for 3 thresholds).
func TestFrozenAgentEndsBoundStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const th = time.Second
	tr := newTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw", HeartbeatThreshold: th})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	px := newProxy(t, transporttest.Addr(t, ep))
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: px.addr(), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	idle, idleA := transporttest.Pair(t, ctx, ep, s)
	busy, busyA := transporttest.Pair(t, ctx, ep, s)
	go io.Copy(io.Discard, busyA)
	go io.Copy(io.Discard, idleA)
	time.Sleep(3 * th)
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 1 || st.Streams != 2 {
		t.Fatalf("after 3 thresholds idle: Stats() = %+v, want 1 link and 2 streams", st)
	}
	go func() { // mid-transfer: the connector keeps writing
		buf := make([]byte, 16<<10)
		for {
			if _, err := busy.Write(buf); err != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	px.stall()
	start := time.Now()
	for name, c := range map[string]net.Conn{"idle": idle, "mid-transfer": busy} {
		_, err := transporttest.ReadEnd(c, th+5*time.Second)
		if !errors.Is(err, yamux.ErrSessionLost) {
			t.Errorf("%s stream on a frozen agent ended with %v after %v, want ErrSessionLost", name, err, time.Since(start))
		} else {
			t.Logf("%s stream ended %v after the freeze (threshold %v)", name, time.Since(start).Round(time.Millisecond), th)
		}
	}
	if d := time.Since(start); d > th+2*time.Second {
		t.Errorf("streams ended %v after the freeze, want within the %v threshold (and slack)", d, th)
	}
	if _, err := busy.Write([]byte("x")); !errors.Is(err, yamux.ErrSessionLost) && !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write on a stream of a lost session: %v, want ErrSessionLost", err)
	}
}

// TestStreamEOFIsNotSessionLoss: a stream the peer half-closes, on a live
// session, reads io.EOF as before.
func TestStreamEOFIsNotSessionLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := newTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: transporttest.Addr(t, ep), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, a := transporttest.Pair(t, ctx, ep, s)
	a.Write([]byte("last words"))
	a.(sdk.CloseWriter).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v; want the bytes then io.EOF", got, err)
	}
}

// TestCutSessionDeliversBufferedBytes: when the connection breaks under a
// stream, what the peer had sent is still read, then ErrSessionLost.
func TestCutSessionDeliversBufferedBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := newTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	px := newProxy(t, transporttest.Addr(t, ep))
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: px.addr(), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, a := transporttest.Pair(t, ctx, ep, s)
	if _, err := a.Write([]byte("sent before the cut")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil { // the bytes have arrived
		t.Fatal(err)
	}
	px.cut()
	got, err := io.ReadAll(c)
	if string(buf)+string(got) != "sent before the cut" || !errors.Is(err, yamux.ErrSessionLost) {
		t.Fatalf("after the cut: read %q, %v; want the rest of the bytes, then ErrSessionLost", got, err)
	}
}

// oldHello is a version 1 hello, as agents before the threshold was
// carried send it.
func oldHello(pass string) []byte {
	b := append([]byte("IOFY\x01"), 0, 0)
	binary.BigEndian.PutUint16(b[5:], uint16(len(pass)))
	return append(b, pass...)
}

// TestOldAgentIsAnsweredInVersion1: an agent speaking hello version 1 gets
// the one-byte answer it expects, then yamux, and carries streams.
func TestOldAgentIsAnsweredInVersion1(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := newTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw", HeartbeatThreshold: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	conn, err := net.Dial("tcp", transporttest.Addr(t, ep))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(oldHello("pw")); err != nil {
		t.Fatal(err)
	}
	// The answer, then the yamux frame opening the control stream (12
	// bytes, version 0, type window update with SYN): nothing in between.
	var b [13]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || b[1] != 0 || b[2] != 1 || binary.BigEndian.Uint16(b[3:5])&1 != 1 {
		t.Fatalf("a version 1 agent read % x after its hello, want 00 (OK) then a yamux SYN frame", b)
	}
	sess, err := hyamux.Client(&prefixed{Conn: conn, prefix: b[1:]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.AcceptStreamWithContext(ctx); err != nil { // control
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		st, err := sess.AcceptStreamWithContext(ctx)
		if err == nil {
			_, err = io.Copy(st, st)
			st.Close()
		}
		got <- err
	}()
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("echo"))
	echo := make([]byte, 4)
	if _, err := io.ReadFull(c, echo); err != nil || string(echo) != "echo" {
		t.Fatalf("echo through a version 1 agent: %q, %v", echo, err)
	}
}

// prefixed is a conn whose first reads return prefix.
type prefixed struct {
	net.Conn
	prefix []byte
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// TestNewAgentFallsBackToVersion1: against a connector that knows only
// hello version 1 (it answers AnswerIncompatible to versions 4, 3 and 2 and
// closes), Dial dials again in each older version and the session works.
func TestNewAgentFallsBackToVersion1(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var hellos []byte
	var mu sync.Mutex
	record := func(v byte) {
		mu.Lock()
		hellos = append(hellos, v)
		mu.Unlock()
	}
	go func() { // the connector of the previous release, in short
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if !transporttest.FirstReleaseHello(conn, record) {
					conn.Close()
					return
				}
				sess, _ := hyamux.Server(conn, nil)
				ctrl, _ := sess.OpenStream()
				defer ctrl.Close()
				st, err := sess.OpenStream()
				if err != nil {
					return
				}
				st.Write([]byte("hi"))
				<-sess.CloseChan()
			}()
		}
	}()
	s, err := newTransport(t).Dial(ctx, sdk.DialConfig{Addr: ln.Addr().String(), Passcode: "pw"})
	if err != nil {
		t.Fatalf("Dial of a version 1 connector: %v", err)
	}
	defer s.Close()
	transporttest.CheckHelloFallback(t, ctx, s, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hellos)
	})
}
