//go:build linux

package pipe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// settleGoroutines waits (bounded) for the goroutine count to fall to at
// most want, and returns the last count.
func settleGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// echoBothWays sends msg left→right and back right→left across a relay.
func echoBothWays(t *testing.T, left, right net.Conn, msg []byte) {
	t.Helper()
	left.SetDeadline(time.Now().Add(10 * time.Second))
	right.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(msg))
	if _, err := left.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(right, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("left→right carried %q, %v", got, err)
	}
	if _, err := right.Write(got); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(left, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("right→left carried %q, %v", got, err)
	}
}

// heldRelays starts n relays with Start over the pairs from pair, carries
// one echo each way on each, and checks that once idle they hold no
// goroutine; then it cancels them all and checks that every done ran.
func heldRelays(t *testing.T, n int, pair func() (left, a, b, right net.Conn)) {
	watchdog(t, 2*time.Minute)
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ended sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	type ends struct{ l, r net.Conn }
	var all []ends
	for range n {
		l, a, b, r := pair()
		all = append(all, ends{l, r})
		ended.Add(1)
		Start(ctx, a, b, Options{IdleTimeout: time.Hour}, func(_ Result, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			ended.Done()
		})
	}
	msg := []byte("hello, relay")
	for _, e := range all {
		echoBothWays(t, e.l, e.r, msg)
	}
	// Parked directions hold no goroutine: allow a few for the parker's
	// loop and stragglers, far fewer than one per relay.
	if got := settleGoroutines(base + 8); got > base+n/4 {
		t.Fatalf("%d idle relays hold %d goroutines (before: %d); want no goroutine per relay", n, got-base, base)
	}
	// Traffic resumes a parked relay.
	echoBothWays(t, all[0].l, all[0].r, []byte("again"))
	cancel()
	waited := make(chan struct{})
	go func() { ended.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatal("cancelled relays did not all end")
	}
	if len(errs) > 0 {
		t.Fatalf("cancelled relays reported %v", errs[0])
	}
	for _, e := range all {
		e.l.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := e.l.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after cancel, a client read %v, want EOF", err)
		}
	}
}

// TestHeldRelaysHoldNoGoroutines: between sockets, an idle relay waits in
// the epoll set, not on goroutines (two per relay before), and cancelling
// resumes and ends every parked relay.
func TestHeldRelaysHoldNoGoroutines(t *testing.T) {
	heldRelays(t, 200, func() (net.Conn, net.Conn, net.Conn, net.Conn) {
		l, a := tcpPair(t)
		b, r := tcpPair(t)
		return l, a, b, r
	})
}

// TestHeldTLSRelaysHoldNoGoroutines is the same with both streams TLS
// (the connector's public TLS client ↔ TLS agent link).
func TestHeldTLSRelaysHoldNoGoroutines(t *testing.T) {
	srv, cli := tlsConfigs(t)
	heldRelays(t, 60, func() (net.Conn, net.Conn, net.Conn, net.Conn) {
		l, a := tlsPair(t, srv, cli)
		b, r := tlsPair(t, srv, cli)
		return l, a, b, r
	})
}

// TestParkedTLSRecordsBuffered: several records that arrive together are
// all delivered although crypto/tls holds all but the first after one
// socket read (a parked direction must drain them before it waits).
func TestParkedTLSRecordsBuffered(t *testing.T) {
	watchdog(t, time.Minute)
	srv, cli := tlsConfigs(t)
	left, a := tlsPair(t, srv, cli)
	b, right := tcpPair(t)
	done := make(chan error, 1)
	Start(context.Background(), a, b, Options{}, func(_ Result, err error) { done <- err })
	// Many small records in one go.
	var want []byte
	for i := range 50 {
		rec := []byte{byte('a' + i%26)}
		want = append(want, rec...)
		if _, err := left.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	right.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(right, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	// The plain side to TLS, then half-close crosses.
	if _, err := right.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	left.SetReadDeadline(time.Now().Add(10 * time.Second))
	back := make([]byte, 4)
	if _, err := io.ReadFull(left, back); err != nil || string(back) != "back" {
		t.Fatalf("back: %q, %v", back, err)
	}
	right.(*net.TCPConn).CloseWrite()
	if n, err := left.Read(back); n != 0 || err != io.EOF {
		t.Fatalf("after the plain side's FIN the TLS client read %d, %v; want EOF", n, err)
	}
	left.CloseWrite()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not end after both half-closes")
	}
}

// TestParkedRelayHalfCloseAndCounts: a relay idle past linger (parked)
// still carries bytes, a FIN each way, and counts every byte.
func TestParkedRelayHalfCloseAndCounts(t *testing.T) {
	watchdog(t, time.Minute)
	left, a := tcpPair(t)
	b, right := tcpPair(t)
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	Start(context.Background(), a, b, Options{IdleTimeout: time.Minute}, func(r Result, err error) { done <- outcome{r, err} })
	echoBothWays(t, left, right, []byte("12345"))
	time.Sleep(3 * linger) // both directions park
	echoBothWays(t, left, right, []byte("678"))
	time.Sleep(3 * linger)
	left.(*net.TCPConn).CloseWrite()
	right.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := right.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the left FIN the right read %d, %v; want EOF", n, err)
	}
	time.Sleep(3 * linger)
	if _, err := right.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	left.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(left, got); err != nil || string(got) != "late" {
		t.Fatalf("left got %q, %v after its own half-close", got, err)
	}
	right.(*net.TCPConn).CloseWrite()
	if n, err := left.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("after the right FIN the left read %d, %v; want EOF", n, err)
	}
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.AToB != 8 || o.res.BToA != 12 {
			t.Fatalf("counted %+v, want AToB 8, BToA 12", o.res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not end after both half-closes")
	}
}

// TestParkedRelayIdleTimeout: the idle timeout closes a parked relay.
func TestParkedRelayIdleTimeout(t *testing.T) {
	watchdog(t, time.Minute)
	left, a := tcpPair(t)
	b, right := tcpPair(t)
	done := make(chan error, 1)
	Start(context.Background(), a, b, Options{IdleTimeout: 5 * linger}, func(_ Result, err error) { done <- err })
	echoBothWays(t, left, right, []byte("x"))
	select {
	case err := <-done:
		if !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("parked relay ended with %v, want ErrIdleTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle timeout did not close a parked relay")
	}
	left.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := left.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client of a timed-out relay read %v, want EOF", err)
	}
}

// TestParkedRelayClosedByOther: a stream closed by someone other than the
// relay (a transport closing the streams of a frozen agent) leaves the
// epoll set without an event; the parker's sweep still ends the relay,
// which closes the other stream.
func TestParkedRelayClosedByOther(t *testing.T) {
	watchdog(t, time.Minute)
	left, a := tcpPair(t)
	b, _ := tcpPair(t)
	done := make(chan error, 1)
	Start(context.Background(), a, b, Options{}, func(_ Result, err error) { done <- err })
	time.Sleep(3 * linger) // both directions park
	b.Close()
	start := time.Now()
	left.SetReadDeadline(time.Now().Add(sweepEvery + 10*time.Second))
	if _, err := left.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the relay's other client read %v, want EOF", err)
	}
	t.Logf("closed after %v (sweep every %v)", time.Since(start).Round(time.Millisecond), sweepEvery)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not end")
	}
}
