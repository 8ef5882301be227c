package tcp_test

// Liveness tests (issue 9, items 4, 6 and 8): a link whose agent is gone
// is released at once; a frozen agent's bound streams are closed within the
// heartbeat threshold; our agents learn the threshold in the handshake.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core/relay"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// legacyLink dials addr and authenticates as a legacy agent (passcode in
// one write, exactly AUTHORIZED back).
func legacyLink(t *testing.T, addr, passcode string) (*net.TCPConn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Write([]byte(passcode)); err != nil {
		tc.Close()
		return nil, err
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(tc, got); err != nil || string(got) != "AUTHORIZED" {
		tc.Close()
		return nil, errors.New("not authorized: " + string(got))
	}
	tc.SetDeadline(time.Time{})
	t.Cleanup(func() { tc.Close() })
	return tc, nil
}

// beatUntil writes BEAT every d on c until stop is closed or a write fails.
func beatUntil(c net.Conn, d time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := c.Write([]byte("BEAT")); err != nil {
				return
			}
		}
	}
}

// drainBeats reads and discards what the connector sends (BEAT answers).
func drainBeats(c net.Conn) { io.Copy(io.Discard, c) }

// privatePipe runs two private endpoints joined by relay.ServePrivate,
// each side capped at one link, as the Controller's private mapping is.
func privatePipe(t *testing.T, threshold time.Duration) (ep1, ep2 sdk.Endpoint, addr1, addr2 string) {
	t.Helper()
	tr := newTransport(t)
	ep1, addr1 = listenEP(t, tr, sdk.EndpointConfig{Passcode: "p1", Mode: sdk.ModePrivate, Side: 1, MaxLinks: 1, HeartbeatThreshold: threshold})
	ep2, addr2 = listenEP(t, tr, sdk.EndpointConfig{Passcode: "p2", Mode: sdk.ModePrivate, Side: 2, MaxLinks: 1, HeartbeatThreshold: threshold})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		relay.ServePrivate(ctx, ep1, ep2, relay.PrivateConfig{})
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ep1, ep2, addr1, addr2
}

// TestLegacyPrivateWaitingAgentDies is issue 9 item 8 at the transport
// level: a legacy agent's private link waits for its partner (maxconnections
// 1) and the agent dies, closing (FIN) or resetting (RST) it. The link must
// be released at once, so the restarted agent is AUTHORIZED at once, and
// the partner that arrives later is paired with the new link, not the dead
// one.
func TestLegacyPrivateWaitingAgentDies(t *testing.T) {
	watchdog(t, time.Minute)
	for _, how := range []string{"close", "reset"} {
		t.Run(how, func(t *testing.T) {
			ep1, _, addr1, addr2 := privatePipe(t, 200*time.Second)
			a, err := legacyLink(t, addr1, "p1")
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			go beatUntil(a, 50*time.Millisecond, stop)
			go drainBeats(a)
			time.Sleep(300 * time.Millisecond) // it waits, beating, in the pairer
			waitLinks(t, ep1, 1)
			close(stop)
			if how == "reset" {
				a.SetLinger(0)
			}
			a.Close()
			start := time.Now()
			var a2 *net.TCPConn
			for {
				if a2, err = legacyLink(t, addr1, "p1"); err == nil {
					break
				}
				if time.Since(start) > 3*time.Second {
					t.Fatalf("the restarted agent still refused %v after the first one died: %v", time.Since(start), err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			took := time.Since(start)
			t.Logf("restarted agent AUTHORIZED %v after the first one's link was %s", took.Round(time.Millisecond), how)
			if took > time.Second {
				t.Errorf("AUTHORIZED only after %v; a dead link must be released at once", took)
			}
			waitLinks(t, ep1, 1)
			b, err := legacyLink(t, addr2, "p2")
			if err != nil {
				t.Fatal(err)
			}
			checkCarries(t, a2, b, "to the new link, not the dead one")
			checkCarries(t, b, a2, "and back")
		})
	}
}

// checkCarries writes msg on from and expects exactly it on to.
func checkCarries(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	to.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(to, got); err != nil || string(got) != msg {
		t.Fatalf("pipe carried %q (%v), want %q", got, err, msg)
	}
	to.SetReadDeadline(time.Time{})
}

// TestLegacyPrivateBytesBeforePartner: what a legacy agent sends while its
// private link waits (the connector keeps reading it, to see beats and
// hang-ups) is kept for the partner, beats removed, up to far more than the
// buffer (the reader pauses and TCP pushes back).
func TestLegacyPrivateBytesBeforePartner(t *testing.T) {
	watchdog(t, time.Minute)
	_, _, addr1, addr2 := privatePipe(t, 200*time.Second)
	a, err := legacyLink(t, addr1, "p1")
	if err != nil {
		t.Fatal(err)
	}
	// A message, beats answered (each in a write of its own), then 300
	// KiB of data, before the partner exists.
	early := []byte("early message of agent A")
	a.Write(early)
	time.Sleep(50 * time.Millisecond)
	for range 3 {
		a.Write([]byte("BEAT"))
		time.Sleep(50 * time.Millisecond)
	}
	answers := make([]byte, 12)
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(a, answers); err != nil || string(answers) != "BEATBEATBEAT" {
		t.Fatalf("beats answered with %q (%v) while waiting for a partner", answers, err)
	}
	big := make([]byte, 300<<10)
	rand.Read(big)
	werr := make(chan error, 1)
	go func() { _, err := a.Write(big); werr <- err }()
	time.Sleep(300 * time.Millisecond)
	b, err := legacyLink(t, addr2, "p2")
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, early...), big...)
	got := make([]byte, len(want))
	b.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatalf("partner read: %v", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the partner got different bytes from offset %d of %d", i, len(want))
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}

// TestLegacyPrivateFullBufferAgentResets: a waiting link whose reader is
// paused on a full buffer (the agent sent more than the connector buffers
// before any partner) is still released at once when its agent resets it.
func TestLegacyPrivateFullBufferAgentResets(t *testing.T) {
	watchdog(t, time.Minute)
	ep1, _, addr1, _ := privatePipe(t, 200*time.Second)
	a, err := legacyLink(t, addr1, "p1")
	if err != nil {
		t.Fatal(err)
	}
	a.SetWriteDeadline(time.Now().Add(2 * time.Second))
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	sent := 0
	for {
		n, err := a.Write(chunk)
		sent += n
		if err != nil {
			break // every buffer on the way is full
		}
	}
	t.Logf("agent wrote %d KiB before the connector pushed back", sent>>10)
	a.SetLinger(0)
	a.Close()
	start := time.Now()
	for {
		if _, err := legacyLink(t, addr1, "p1"); err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("a reset waiting link with a full buffer was not released within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("released %v after the reset", time.Since(start).Round(time.Millisecond))
	waitLinks(t, ep1, 1)
}

// TestLegacyPublicLinkDiesBound: a bound legacy link whose agent closes is
// released at once (its place under MaxLinks freed) and its stream reads
// io.EOF after the bytes sent before.
func TestLegacyPublicLinkDiesBound(t *testing.T) {
	watchdog(t, time.Minute)
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", MaxLinks: 1, HeartbeatThreshold: 200 * time.Second})
	a, err := legacyLink(t, addr, "pc")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a.Write([]byte("last words"))
	a.Close()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "last words" {
		t.Fatalf("bound stream read %q, %v; want the last words then EOF", got, err)
	}
	waitLinks(t, ep, 0)
	if _, err := legacyLink(t, addr, "pc"); err != nil {
		t.Fatalf("a new link refused while the dead bound stream is still held: %v", err)
	}
}

// TestLegacyFrozenBound: a legacy agent that freezes (stops beating and
// reading) while a client is bound to its link gets that stream closed
// within the heartbeat threshold, as before.
func TestLegacyFrozenBound(t *testing.T) {
	watchdog(t, time.Minute)
	const th = time.Second
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})
	a, err := legacyLink(t, addr, "pc")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go beatUntil(a, 200*time.Millisecond, stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write([]byte("ping"))
	got := make([]byte, 4)
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "ping" {
		t.Fatalf("agent read %q, %v", got, err)
	}
	time.Sleep(2 * th) // bound and idle, beating: kept
	close(stop)        // frozen: no beat, no read
	start := time.Now()
	s.SetReadDeadline(time.Now().Add(th + 5*time.Second))
	_, err = io.Copy(io.Discard, s)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a frozen legacy agent's bound stream still open %v after its %v threshold", 5*time.Second, th)
	}
	t.Logf("bound stream of a frozen legacy agent closed %v after its last beat (threshold %v): %v", time.Since(start).Round(time.Millisecond), th, err)
	waitLinks(t, ep, 0)
}

// rawAgent speaks our protocol byte by byte, to test the connector's side
// of it exactly.
type rawAgent struct {
	addr, passcode string
	inst           [16]byte
}

func newRawAgent(addr, passcode string) *rawAgent {
	a := &rawAgent{addr: addr, passcode: passcode}
	rand.Read(a.inst[:])
	return a
}

// hello dials and sends a hello; it returns the link and the answer bytes
// that arrived within a short wait.
func (a *rawAgent) hello(t *testing.T, version, role byte) (net.Conn, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", a.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b := []byte{0xF0, 'I', 'C', 'N', version, role}
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.passcode)))
	b = append(b, a.passcode...)
	if version >= 2 {
		b = append(b, a.inst[:]...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	want := 1
	if version >= 2 {
		want = 5
	}
	ans := make([]byte, want)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.ReadFull(c, ans)
	if err != nil && n != 1 {
		t.Fatalf("v%d %c hello: answer %x: %v", version, role, ans[:n], err)
	}
	c.SetReadDeadline(time.Time{})
	return c, ans[:n]
}

// control opens a control link that beats every d until the returned
// stop is called with the way to end: "freeze" (stop beating, keep it
// open), "close" (close without goodbye) or "bye" (goodbye, then close).
func (a *rawAgent) control(t *testing.T, d time.Duration) (end func(how string)) {
	t.Helper()
	c, ans := a.hello(t, 2, 'C')
	if len(ans) != 5 || ans[0] != 0 {
		t.Fatalf("control hello answered %x", ans)
	}
	go drainBeats(c)
	var once sync.Once
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := c.Write([]byte{'H'}); err != nil {
					return
				}
			}
		}
	}()
	return func(how string) {
		once.Do(func() {
			close(stop)
			<-done
			switch how {
			case "bye":
				c.Write([]byte{'G'})
				c.Close()
			case "close":
				c.Close()
			}
		})
	}
}

// bound links a pool link and binds it with ep.Open; it returns the
// connector's stream and the agent's end.
func (a *rawAgent) bound(t *testing.T, ep sdk.Endpoint, version byte) (c, agent net.Conn) {
	t.Helper()
	link, ans := a.hello(t, version, 'P')
	if ans[0] != 0 {
		t.Fatalf("pool hello answered %x", ans)
	}
	type res struct {
		c   net.Conn
		err error
	}
	opened := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := ep.Open(ctx)
		opened <- res{c, err}
	}()
	b := make([]byte, 1)
	link.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := io.ReadFull(link, b); err != nil {
			t.Fatalf("waiting for the bind frame: %v", err)
		}
		if b[0] == 'B' {
			break
		}
	}
	link.SetReadDeadline(time.Time{})
	link.Write([]byte{'A'})
	r := <-opened
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	if _, ok := r.c.(*net.TCPConn); !ok {
		t.Errorf("Open returned %T, want the bare *net.TCPConn (splice)", r.c)
	}
	r.c.Write([]byte("x"))
	link.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(link, b); err != nil || b[0] != 'x' {
		t.Fatalf("bound stream carried %q, %v", b, err)
	}
	link.SetReadDeadline(time.Time{})
	return r.c, link
}

// closedWithin reports how long c took to end (EOF or reset), or fails
// when it is still open after d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("stream still open after %v", d)
	}
	return time.Since(start)
}

// TestFrozenAgentBoundStreams is issue 9 item 4 on the connector side: a
// version 2 agent's bound stream (a bare TCP pipe) is closed within the
// threshold once its instance's control link falls silent (a frozen
// agent), at once when the control link closes without a goodbye (a dead
// agent), after the threshold when no control link ever came, and never
// because of a goodbye.
func TestFrozenAgentBoundStreams(t *testing.T) {
	watchdog(t, 2*time.Minute)
	const th = time.Second
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})

	t.Run("frozen", func(t *testing.T) {
		a := newRawAgent(addr, "pc")
		end := a.control(t, th/4)
		c, _ := a.bound(t, ep, 2)
		time.Sleep(2 * th) // idle but beating: kept
		if _, err := c.Write([]byte("y")); err != nil {
			t.Fatalf("a live instance's bound stream was closed: %v", err)
		}
		end("freeze")
		took := closedWithin(t, c, th+5*time.Second)
		t.Logf("frozen agent's bound stream closed %v after its last beat (threshold %v)", took.Round(time.Millisecond), th)
		if took < th/2 {
			t.Errorf("closed after %v, well before the %v threshold", took, th)
		}
	})
	t.Run("dies", func(t *testing.T) {
		a := newRawAgent(addr, "pc")
		end := a.control(t, th/4)
		c, _ := a.bound(t, ep, 2)
		end("close")
		took := closedWithin(t, c, th+5*time.Second)
		t.Logf("bound stream closed %v after the control link closed", took.Round(time.Millisecond))
		if took > th/2 {
			t.Errorf("closed only after %v; a closed control link (dead agent) must close its streams at once", took)
		}
	})
	t.Run("no control link", func(t *testing.T) {
		a := newRawAgent(addr, "pc")
		c, _ := a.bound(t, ep, 2)
		took := closedWithin(t, c, th+5*time.Second)
		t.Logf("bound stream of an instance without a control link closed after %v", took.Round(time.Millisecond))
	})
	t.Run("goodbye", func(t *testing.T) {
		a := newRawAgent(addr, "pc")
		end := a.control(t, th/4)
		c, link := a.bound(t, ep, 2)
		end("bye")
		time.Sleep(2 * th)
		if _, err := c.Write([]byte("z")); err != nil {
			t.Fatalf("a stream closed after its instance said goodbye: %v", err)
		}
		b := make([]byte, 1)
		link.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(link, b); err != nil || b[0] != 'z' {
			t.Fatalf("after goodbye the stream carried %q, %v", b, err)
		}
	})
	t.Run("version 1 unchanged", func(t *testing.T) {
		// An agent of the previous protocol: one-byte answer, no
		// instance, and its bound stream is not expired (it has no
		// control link to prove it alive; nothing changed for it).
		a := newRawAgent(addr, "pc")
		link, ans := a.hello(t, 1, 'P')
		if !bytes.Equal(ans, []byte{0}) {
			t.Fatalf("v1 hello answered %x, want exactly 00", ans)
		}
		link.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := link.Read(make([]byte, 8)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("after the v1 answer the connector sent %d more bytes (%v)", n, err)
		}
		link.Close()
		a = newRawAgent(addr, "pc")
		c, _ := a.bound(t, ep, 1)
		time.Sleep(2 * th)
		if _, err := c.Write([]byte("v")); err != nil {
			t.Fatalf("a v1 agent's bound stream was closed: %v", err)
		}
	})
}

// TestAgentLearnsThreshold is issue 9 item 6 at the transport level: an
// agent configured with nothing learns the endpoint's threshold in the
// handshake and beats inside it, so its idle link lives on (at a9db89d it
// beat every 5s and was dropped every threshold). The control link does
// not count against MaxLinks: with MaxLinks 1 the agent's one pool link is
// admitted and a second agent is refused.
func TestAgentLearnsThreshold(t *testing.T) {
	watchdog(t, time.Minute)
	const th = time.Second
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", MaxLinks: 1, HeartbeatThreshold: th})
	s, err := tr.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() { c, err := s.Accept(ctx); acc <- res{c, err} }()
	waitLinks(t, ep, 1)
	// A second agent is over MaxLinks; the first one's control link is not.
	s2, _ := tr.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc"})
	defer s2.Close()
	if _, err := s2.Accept(ctx); !errors.Is(err, sdk.ErrLinkLimit) {
		t.Errorf("second agent with MaxLinks 1: %v, want sdk.ErrLinkLimit", err)
	}
	deadline := time.Now().Add(5 * th)
	for time.Now().Before(deadline) {
		select {
		case r := <-acc:
			t.Fatalf("the idle link ended within 5 thresholds: %v, %v", r.c, r.err)
		case <-time.After(50 * time.Millisecond):
		}
		if got := ep.(sdk.StatsReporter).Stats().Links; got != 1 {
			t.Fatalf("Stats().Links = %d while one idle link lives, want 1", got)
		}
	}
	oc, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	r := <-acc
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	if err := pingPong(oc, r.c); err != nil {
		t.Fatal(err)
	}
}

func pingPong(a, b net.Conn) error {
	a.SetDeadline(time.Now().Add(5 * time.Second))
	b.SetDeadline(time.Now().Add(5 * time.Second))
	defer a.SetDeadline(time.Time{})
	defer b.SetDeadline(time.Time{})
	if _, err := a.Write([]byte("ping")); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "ping" {
		return errors.New("ping not carried: " + string(got))
	}
	return nil
}

// TestSessionCloseKeepsStreamsAlive: after Session.Close the control link
// keeps beating for the streams still open, so the connector does not
// expire them; once they are closed it says goodbye and ends.
func TestSessionCloseKeepsStreamsAlive(t *testing.T) {
	watchdog(t, time.Minute)
	const th = time.Second
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})
	s, err := tr.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := s.Accept(ctx); acc <- c }()
	oc, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	a := <-acc
	if a == nil {
		t.Fatal("Accept failed")
	}
	s.Close()
	time.Sleep(3 * th)
	if err := pingPong(oc, a); err != nil {
		t.Fatalf("stream expired after Session.Close though it was open: %v", err)
	}
	if err := pingPong(a, oc); err != nil {
		t.Fatalf("stream expired after Session.Close though it was open: %v", err)
	}
	a.Close()
	// The connector's end sees the agent's close, as a normal end.
	if _, err := io.ReadAll(oc); err != nil {
		t.Fatalf("connector end after the agent closed its stream: %v", err)
	}
}

// oldConnector is the connector half of a9db89d's protocol (version 1
// only), enough for one pool link: it answers incompatible to anything but
// version 1, binds every accepted link at once and echoes it.
type oldConnector struct {
	ln       net.Listener
	versions chan byte
}

func newOldConnector(t *testing.T, passcode string) *oldConnector {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &oldConnector{ln: ln, versions: make(chan byte, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				hdr := make([]byte, 8)
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				o.versions <- hdr[4]
				if hdr[4] != 1 {
					c.Write([]byte{3})
					return
				}
				pc := make([]byte, binary.BigEndian.Uint16(hdr[6:]))
				io.ReadFull(c, pc)
				if string(pc) != passcode {
					c.Write([]byte{1})
					return
				}
				c.Write([]byte{0, 'B'})
				b := make([]byte, 1)
				for b[0] != 'A' {
					if _, err := io.ReadFull(c, b); err != nil {
						return
					}
				}
				io.Copy(c, c)
			}()
		}
	}()
	return o
}

// TestAgentFallsBackToV1: against a connector of the first version, our
// agent gets "incompatible" to its version 4, 3 and 2 hellos, says so
// once, speaks version 1 from then on, and works.
func TestAgentFallsBackToV1(t *testing.T) {
	watchdog(t, time.Minute)
	old := newOldConnector(t, "pc")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s, err := newTransport(t).Dial(context.Background(), sdk.DialConfig{Addr: old.ln.Addr().String(), Passcode: "pc", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 {
		c, err := s.Accept(ctx)
		if err != nil {
			t.Fatalf("Accept %d against a version 1 connector: %v", i, err)
		}
		if _, ok := c.(*net.TCPConn); !ok {
			t.Errorf("Accept returned %T", c)
		}
		c.Write([]byte("echo"))
		got := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "echo" {
			t.Fatalf("stream %d over version 1: %q %v", i, got, err)
		}
		c.Close()
	}
	var seen []byte
	for len(old.versions) > 0 {
		seen = append(seen, <-old.versions)
	}
	if !bytes.Equal(seen, []byte{4, 3, 2, 1, 1}) {
		t.Errorf("hello versions seen by the old connector: %v, want [4 3 2 1 1] (one try each of v4, v3 and v2, then v1)", seen)
	}
	if n := strings.Count(logs.String(), "protocol version 1 only"); n != 1 {
		t.Errorf("fallback logged %d times, want once:\n%s", n, logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFrozenAgentSplicedRelay: the bound stream of our agent stays the
// bare socket in a real relay (sdk/pipe), and the relay to a public client
// ends within the threshold once the agent's control link is frozen.
func TestFrozenAgentSplicedRelay(t *testing.T) {
	watchdog(t, time.Minute)
	const th = time.Second
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})
	a := newRawAgent(addr, "pc")
	end := a.control(t, th/4)
	c, _ := a.bound(t, ep, 2)
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pub, err := net.Dial("tcp", cl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pubSrv, err := cl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		pipe.Join(context.Background(), pubSrv, c)
		close(done)
	}()
	end("freeze")
	took := closedWithin(t, pub, th+5*time.Second)
	t.Logf("public client of a frozen agent closed after %v (threshold %v)", took.Round(time.Millisecond), th)
	<-done
}

// TestOwnAgentDiesWhileStreamWaits: our agent's stream (open role) waits
// in the private pairer for a partner and the agent dies (its control link
// closes without a goodbye). The connector closes the stream at once,
// frees its place (MaxLinks 1), and the partner arriving later is not
// paired with the dead stream (and closed with it) but with the next agent.
func TestOwnAgentDiesWhileStreamWaits(t *testing.T) {
	watchdog(t, time.Minute)
	ep1, _, addr1, addr2 := privatePipe(t, 200*time.Second)
	a := newRawAgent(addr1, "p1")
	end := a.control(t, 50*time.Millisecond)
	stream, ans := a.hello(t, 2, 'O')
	if ans[0] != 0 {
		t.Fatalf("open hello answered %x", ans)
	}
	time.Sleep(200 * time.Millisecond) // in the pairer, waiting
	waitLinks(t, ep1, 1)
	end("close")
	if took := closedWithin(t, stream, 5*time.Second); took > time.Second {
		t.Errorf("the dead agent's waiting stream was closed only after %v", took)
	}
	waitLinks(t, ep1, 0)
	b, err := legacyLink(t, addr2, "p2")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the partner was closed or sent something after arriving (%v): it was paired with the dead stream", err)
	}
	b.SetReadDeadline(time.Time{})
	a2, err := legacyLink(t, addr1, "p1")
	if err != nil {
		t.Fatal(err)
	}
	checkCarries(t, b, a2, "paired with the live agent")
}

// TestLegacyPrivateWaitingAgentFreezes: the heartbeat threshold holds for
// a legacy link waiting for its private partner too: one that stops
// beating is released within the threshold, and the restarted agent links.
func TestLegacyPrivateWaitingAgentFreezes(t *testing.T) {
	watchdog(t, time.Minute)
	const th = time.Second
	ep1, _, addr1, _ := privatePipe(t, th)
	a, err := legacyLink(t, addr1, "p1")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go beatUntil(a, 200*time.Millisecond, stop)
	time.Sleep(2 * th) // waiting, beating: kept
	waitLinks(t, ep1, 1)
	close(stop) // frozen
	took := closedWithin(t, a, th+5*time.Second)
	t.Logf("silent waiting link closed %v after its last beat (threshold %v)", took.Round(time.Millisecond), th)
	waitLinks(t, ep1, 0)
	if _, err := legacyLink(t, addr1, "p1"); err != nil {
		t.Fatalf("the restarted agent: %v", err)
	}
}

// TestControlLinkNeverCame: a version 2 instance whose control link never
// came is expired by its own timer once the threshold passed (no sweeper
// polls any more): its bound stream is closed, not before about the
// threshold, and its place is free by the time the stream ends, without
// the core reporting it closed. A stream the core reports closed before
// that is freed at once, and its instance, with nothing left to watch, is
// forgotten: a later report of it, or the timer, changes nothing.
func TestControlLinkNeverCame(t *testing.T) {
	watchdog(t, time.Minute)
	const th = time.Second
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})
	sr := ep.(sdk.StatsReporter)

	a := newRawAgent(addr, "pc")
	start := time.Now()
	c, _ := a.bound(t, ep, 2)
	if st := sr.Stats(); st.Links != 1 || st.Streams != 1 {
		t.Fatalf("Stats() = %+v with one stream bound, want Links 1, Streams 1", st)
	}
	closedWithin(t, c, th+5*time.Second)
	took := time.Since(start)
	t.Logf("bound stream of an instance without a control link closed %v after it was bound (threshold %v)", took.Round(time.Millisecond), th)
	if took < th*9/10 {
		t.Errorf("closed after %v, before the %v threshold", took, th)
	}
	if st := sr.Stats(); st.Links != 0 || st.Streams != 0 {
		t.Errorf("Stats() = %+v once the expired instance's stream ended, want Links 0, Streams 0", st)
	}
	ep.(sdk.StreamObserver).StreamClosed(c) // the core's late report: ignored
	if st := sr.Stats(); st.Links != 0 || st.Streams != 0 {
		t.Errorf("Stats() = %+v after the core reported the expired stream closed, want Links 0, Streams 0", st)
	}

	// Reported closed before the threshold: freed at once, and another
	// stream of the same instance bound later gets a full threshold.
	b := newRawAgent(addr, "pc")
	c1, _ := b.bound(t, ep, 2)
	c1.Close()
	ep.(sdk.StreamObserver).StreamClosed(c1)
	if st := sr.Stats(); st.Links != 0 || st.Streams != 0 {
		t.Errorf("Stats() = %+v right after the only stream was reported closed, want Links 0, Streams 0", st)
	}
	time.Sleep(th / 2)
	start = time.Now()
	c2, _ := b.bound(t, ep, 2)
	closedWithin(t, c2, th+5*time.Second)
	if took := time.Since(start); took < th*9/10 {
		t.Errorf("the instance's second stream closed after %v: the first stream's timer outlived it", took)
	}
}
