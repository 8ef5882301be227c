package yamux_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/transports/yamux"
)

// pairOn opens a stream from ep and accepts it on s.
func pairOn(t *testing.T, ctx context.Context, ep sdk.Endpoint, s sdk.Session) (c, a net.Conn) {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		a, err := s.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- a
	}()
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a = <-got
	if a == nil {
		t.FailNow()
	}
	t.Cleanup(func() { a.Close() })
	return c, a
}

// readEnd reads c until it ends and returns how it ended, or fails after
// limit.
func readEnd(t *testing.T, c net.Conn, limit time.Duration) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return err
}

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
	px := newProxy(t, listenAddr(t, ep))
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: px.addr(), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	idle, idleA := pairOn(t, ctx, ep, s)
	busy, busyA := pairOn(t, ctx, ep, s)
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
		err := readEnd(t, c, th+5*time.Second)
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
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: listenAddr(t, ep), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, a := pairOn(t, ctx, ep, s)
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
	px := newProxy(t, listenAddr(t, ep))
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: px.addr(), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, a := pairOn(t, ctx, ep, s)
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
	conn, err := net.Dial("tcp", listenAddr(t, ep))
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
	go func() { // the connector of the previous release, in short
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var hdr [7]byte
				if _, err := io.ReadFull(conn, hdr[:]); err != nil {
					conn.Close()
					return
				}
				mu.Lock()
				hellos = append(hellos, hdr[4])
				mu.Unlock()
				if hdr[4] != 1 {
					conn.Write([]byte{3})
					conn.Close()
					return
				}
				pass := make([]byte, binary.BigEndian.Uint16(hdr[5:]))
				io.ReadFull(conn, pass)
				conn.Write([]byte{0})
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
	a, err := s.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	buf := make([]byte, 2)
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("stream from a version 1 connector: %q, %v", buf, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(hellos, []byte{4, 3, 2, 1}) {
		t.Errorf("hello versions sent: %v, want [4 3 2 1] (the newest, then each older one)", hellos)
	}
}
