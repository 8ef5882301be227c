package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// idleRelay joins a pair from mkA with a pair from mkB under JoinWith and
// returns the outer ends and Join's outcome.
func idleRelay(t *testing.T, mkA, mkB func(testing.TB) (net.Conn, net.Conn), idle time.Duration) (left, right net.Conn, done <-chan joinOutcome) {
	t.Helper()
	left, a := mkA(t)
	b, right := mkB(t)
	ch := make(chan joinOutcome, 1)
	go func() {
		res, err := JoinWith(context.Background(), a, b, Options{IdleTimeout: idle})
		ch <- joinOutcome{res, err}
	}()
	return left, right, ch
}

// idlePaths are the three copy paths: splice between sockets, a socket
// into a non-socket (readiness wait + buffer), and two non-sockets.
var idlePaths = []struct {
	name     string
	mkA, mkB func(testing.TB) (net.Conn, net.Conn)
}{
	{"splice", tcpPair, tcpPair},
	{"socket-to-nonsocket", tcpPair, memPair},
	{"nonsocket", memPair, memPair},
}

// readEnds reads c until it ends and reports how long that took, or fails
// the test after limit.
func readEnds(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("still open %s after it went idle", limit)
	}
	return time.Since(start)
}

// exchange sends msg from w and reads it at r.
func exchange(t *testing.T, w, r net.Conn, msg string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := w.Write([]byte(msg)); errc <- err }()
	buf := make([]byte, len(msg))
	r.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != msg {
		t.Fatalf("relay carried %q, %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestJoinIdleTimeoutClosesBothSides(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, p := range idlePaths {
		t.Run(p.name, func(t *testing.T) {
			watchdog(t, time.Minute)
			left, right, done := idleRelay(t, p.mkA, p.mkB, idle)
			exchange(t, left, right, "ping")
			exchange(t, right, left, "pong")
			// Both outer ends are closed once the relay has been idle.
			took := readEnds(t, left, 20*time.Second)
			readEnds(t, right, 20*time.Second)
			if took < idle/2 {
				t.Fatalf("closed %s after the last byte; the idle timeout is %s", took, idle)
			}
			out := <-done
			if !errors.Is(out.err, ErrIdleTimeout) || !errors.Is(out.err, os.ErrDeadlineExceeded) {
				t.Fatalf("JoinWith = %v, want ErrIdleTimeout", out.err)
			}
			var ne net.Error
			if !errors.As(out.err, &ne) || !ne.Timeout() {
				t.Fatalf("ErrIdleTimeout is not a net.Error timeout: %#v", out.err)
			}
			if out.res.AToB != 4 || out.res.BToA != 4 {
				t.Fatalf("counted %+v, want 4 bytes each way", out.res)
			}
		})
	}
}

// TestJoinIdleTimeoutSparesActiveRelays: traffic in one direction only,
// every tenth of the timeout for two and a half timeouts, keeps the relay
// open.
func TestJoinIdleTimeoutSparesActiveRelays(t *testing.T) {
	const idle = time.Second
	for _, p := range idlePaths {
		for _, dir := range []string{"a-to-b", "b-to-a"} {
			t.Run(p.name+"/"+dir, func(t *testing.T) {
				t.Parallel()
				watchdog(t, time.Minute)
				left, right, done := idleRelay(t, p.mkA, p.mkB, idle)
				w, r := left, right
				if dir == "b-to-a" {
					w, r = right, left
				}
				for i := range 25 {
					exchange(t, w, r, string(rune('a'+i)))
					time.Sleep(idle / 10)
				}
				select {
				case out := <-done:
					t.Fatalf("active relay ended: %+v %v", out.res, out.err)
				default:
				}
				readEnds(t, left, 20*time.Second)
				if out := <-done; !errors.Is(out.err, ErrIdleTimeout) {
					t.Fatalf("JoinWith = %v, want ErrIdleTimeout once traffic stopped", out.err)
				}
			})
		}
	}
}

// TestJoinIdleTimeoutNormalEnd: a relay that ends by EOF before the
// timeout reports no error, and its timer is gone.
func TestJoinIdleTimeoutNormalEnd(t *testing.T) {
	watchdog(t, time.Minute)
	left, right, done := idleRelay(t, tcpPair, tcpPair, 200*time.Millisecond)
	exchange(t, left, right, "x")
	left.(*net.TCPConn).CloseWrite()
	right.(*net.TCPConn).CloseWrite()
	out := <-done
	if out.err != nil || out.res.AToB != 1 {
		t.Fatalf("JoinWith = %+v, %v; want 1 byte and no error", out.res, out.err)
	}
	time.Sleep(400 * time.Millisecond) // a stray timer would fire here
}

func TestActivityTimerReArms(t *testing.T) {
	watchdog(t, time.Minute)
	a := newActivity()
	fired := make(chan time.Time, 1)
	start := time.Now()
	w := a.watch(500*time.Millisecond, func() { fired <- time.Now() })
	defer w.stop()
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		a.touch()
	}
	touched := time.Now()
	select {
	case at := <-fired:
		if at.Before(touched) {
			t.Fatalf("expired %s after start while touched every 50ms", at.Sub(start))
		}
		if got := at.Sub(touched); got < 400*time.Millisecond {
			t.Fatalf("expired %s after the last touch, want about 500ms", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("never expired")
	}
	if !w.expired.Load() {
		t.Fatal("expired flag not set")
	}
}

func TestActivityTimerStop(t *testing.T) {
	a := newActivity()
	fired := make(chan struct{}, 1)
	w := a.watch(50*time.Millisecond, func() { fired <- struct{}{} })
	w.stop()
	select {
	case <-fired:
		t.Fatal("fired after stop")
	case <-time.After(300 * time.Millisecond):
	}
}
