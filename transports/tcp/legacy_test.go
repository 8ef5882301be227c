package tcp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// TestLegacyAgentPublic: legacy links authenticate with the bare passcode,
// get exactly AUTHORIZED, have their BEATs answered while idle and never
// see them forwarded, and carry several public clients at once, each on
// its own link, byte-exact.
func TestLegacyAgentPublic(t *testing.T) {
	watchdog(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "3f1c8d0e-legacy", MaxLinks: 4, HeartbeatThreshold: 2 * time.Second})
	la := &legacyAgent{addr: addr, passcode: "3f1c8d0e-legacy", local: echoServer(t), beat: 100 * time.Millisecond}
	ready, wait := la.run(ctx, 4)
	defer wait()
	defer cancel()
	<-ready
	// Idle links beat and are answered.
	time.Sleep(500 * time.Millisecond)
	if la.beatsAnswered.Load() == 0 {
		t.Fatal("the connector answered no BEAT on idle legacy links")
	}
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 4 || st.IdleLinks != 4 {
		t.Errorf("Stats() = %+v with 4 idle legacy links, want Links 4, IdleLinks 4", st)
	}
	la.quiet.Store(true)
	time.Sleep(150 * time.Millisecond) // let a beat in flight land
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		c, err := ep.Open(ctx)
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			// Small messages: a legacy link mixes BEATs into its data, and
			// only a read that is exactly BEAT can be told apart.
			if err := echoCheck(c, byte(i), 64<<10, false); err != nil {
				errs <- fmt.Errorf("legacy stream %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLegacyWrongPasscode: a wrong passcode is closed without AUTHORIZED,
// and a legacy agent over MaxLinks is closed too.
func TestLegacyWrongPasscode(t *testing.T) {
	watchdog(t, time.Minute)
	tr := newTransport(t)
	_, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "right-passcode", MaxLinks: 1})
	bad := &legacyAgent{addr: addr, passcode: "wrong-passcode", local: "127.0.0.1:1"}
	if err := bad.link(context.Background(), nil); !errors.Is(err, errRefused) {
		t.Errorf("wrong passcode: err = %v, want refused", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	good := &legacyAgent{addr: addr, passcode: "right-passcode", local: "127.0.0.1:1"}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- good.link(ctx, ready) }()
	<-ready
	over := &legacyAgent{addr: addr, passcode: "right-passcode", local: "127.0.0.1:1"}
	if err := over.link(context.Background(), nil); !errors.Is(err, errRefused) {
		t.Errorf("agent over MaxLinks=1: err = %v, want refused", err)
	}
	cancel()
	<-done
}

// TestLegacyHeartbeatAbsence: a legacy link that stops beating is closed
// within the threshold and frees its place.
func TestLegacyHeartbeatAbsence(t *testing.T) {
	watchdog(t, time.Minute)
	const th = 500 * time.Millisecond
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})
	silent := &legacyAgent{addr: addr, passcode: "pc", local: "127.0.0.1:1"} // beat 0: never beats
	start := time.Now()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- silent.link(context.Background(), ready) }()
	<-ready
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("silent legacy link closed after %v (threshold %v): %v", took, th, err)
		if took < th {
			t.Errorf("closed after %v, before the %v threshold", took, th)
		}
	case <-time.After(th + 3*time.Second):
		t.Fatalf("a silent legacy link was still open %v after its %v threshold", 3*time.Second, th)
	}
	waitLinks(t, ep, 0)
}

// TestIdleLinkHeartbeatAbsence: a link of ours that authenticates in the
// pool role and then stays silent is closed within the threshold, while a
// session's links, which beat, outlive it.
func TestIdleLinkHeartbeatAbsence(t *testing.T) {
	watchdog(t, time.Minute)
	const th = 500 * time.Millisecond
	tr := newTransport(t)
	ep, addr := listenEP(t, tr, sdk.EndpointConfig{Passcode: "pc", HeartbeatThreshold: th})
	// A live session's idle link beats and survives 4 thresholds.
	s, err := tr.Dial(context.Background(), sdk.DialConfig{Addr: addr, Passcode: "pc", HeartbeatThreshold: th})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := s.Accept(context.Background()); acc <- c }()
	// A silent link: the raw hello, then nothing.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello := append([]byte{0xF0, 'I', 'C', 'N', 1, 'P', 0, 2}, "pc"...)
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	ans := make([]byte, 1)
	if _, err := io.ReadFull(c, ans); err != nil || ans[0] != 0 {
		t.Fatalf("hello answer %v, %v; want 0 (ok)", ans, err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(th + 3*time.Second))
	_, err = io.ReadAll(c)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("silent idle link not closed within %v: %v", th+3*time.Second, err)
	}
	t.Logf("silent idle link closed after %v (threshold %v)", took, th)
	time.Sleep(4 * th)
	// The beating link is still there and binds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	oc, err := ep.Open(ctx)
	if err != nil {
		t.Fatalf("Open after 4 thresholds with a beating idle link: %v", err)
	}
	defer oc.Close()
	ac := <-acc
	if ac == nil {
		t.Fatal("the session's Accept failed")
	}
	defer ac.Close()
	if _, err := oc.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(ac, b); err != nil || b[0] != 'x' {
		t.Fatalf("bound stream read %q, %v", b, err)
	}
}

func waitLinks(t *testing.T, ep sdk.Endpoint, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := ep.(sdk.StatsReporter).Stats().Links
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats().Links = %d, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLegacyPrivatePair: in private mode legacy links arrive at Accept on
// each side; joined, bytes written on one come out on the other, and
// BEATs are answered and never forwarded.
func TestLegacyPrivatePair(t *testing.T) {
	watchdog(t, time.Minute)
	tr := newTransport(t)
	ep1, addr1 := listenEP(t, tr, sdk.EndpointConfig{Passcode: "p1", Mode: sdk.ModePrivate, Side: 1})
	ep2, addr2 := listenEP(t, tr, sdk.EndpointConfig{Passcode: "p2", Mode: sdk.ModePrivate, Side: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dialLegacy := func(addr, pc string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write([]byte(pc))
		b := make([]byte, 10)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "AUTHORIZED" {
			t.Fatalf("legacy auth: %q %v", b, err)
		}
		return c
	}
	a := dialLegacy(addr1, "p1")
	b := dialLegacy(addr2, "p2")
	s1, err := ep1.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ep2.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go pipe.Join(ctx, s1, s2)
	// A beats; the beat is answered to A and not forwarded to B.
	a.Write([]byte("BEAT"))
	got := make([]byte, 4)
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "BEAT" {
		t.Fatalf("BEAT answer: %q %v", got, err)
	}
	time.Sleep(50 * time.Millisecond)
	for _, dir := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "from side one"}, {b, a, "and back from side two"}} {
		if _, err := dir.from.Write([]byte(dir.msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(dir.msg))
		dir.to.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(dir.to, got); err != nil || string(got) != dir.msg {
			t.Fatalf("private pipe carried %q (%v), want %q", got, err, dir.msg)
		}
	}
}
