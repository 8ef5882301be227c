//go:build linux

package yamux_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/pipe"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/yamux"
)

// The relays here are the connector's and the agent's around one yamux
// stream, in one process, over a real session (loopback TCP, or TLS with
// a generated certificate):
//
//	left ⇄ [pipe: la ⇄ c] ⇄ yamux ⇄ [pipe: a ⇄ rb] ⇄ right
//
// c→la and a→rb are the directions whose source is a yamux stream: they
// park with the stream's NotifyRead, the others in the epoll set.

// rig is a yamux endpoint with one agent session, dialled through a
// proxy that can cut it.
type rig struct {
	ep sdk.Endpoint
	s  sdk.Session
	px *proxy
}

func newRig(t testing.TB, useTLS bool) rig {
	t.Helper()
	tr := newTransport(t)
	var cfg sdk.EndpointConfig
	var dcfg sdk.DialConfig
	if useTLS {
		srv, cli := transporttest.TLSConfigs(t)
		cfg.TLS, dcfg.TLS = srv, cli
	}
	ep, addr := transporttest.Listen(t, tr, "tcp", cfg)
	px := newProxy(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dcfg.Addr, dcfg.Passcode = px.addr(), "pw"
	s, err := tr.Dial(ctx, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return rig{ep, s, px}
}

// relayed is one relay pair of a rig.
type relayed struct {
	left, right *net.TCPConn
	c, a        net.Conn           // the connector's and the agent's stream
	conn, agent chan error         // each relay's result
	cancel      context.CancelFunc // ends both relays
}

func loopPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	c, s := transporttest.TCPPairs(t)(t)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// relay starts the two relays of one stream with opts.
func (r rig) relay(t testing.TB, opts pipe.Options) *relayed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	c, a := transporttest.Pair(t, pctx, r.ep, r.s)
	// The agent relays the stream itself, not its origin wrapper (as
	// sdk/agent does).
	if nc, ok := a.(interface{ NetConn() net.Conn }); ok {
		a = nc.NetConn()
	}
	left, la := loopPair(t)
	rb, right := loopPair(t)
	rl := &relayed{left: left, right: right, c: c, a: a, conn: make(chan error, 1), agent: make(chan error, 1), cancel: cancel}
	pipe.Start(ctx, la, c, opts, func(_ pipe.Result, err error) { rl.conn <- err })
	pipe.Start(ctx, a, rb, opts, func(_ pipe.Result, err error) { rl.agent <- err })
	return rl
}

// ended waits for both relays to end and returns their errors.
func (rl *relayed) ended(t *testing.T, limit time.Duration) (conn, agent error) {
	t.Helper()
	timeout := time.After(limit)
	for i := 0; i < 2; i++ {
		select {
		case conn = <-rl.conn:
		case agent = <-rl.agent:
		case <-timeout:
			t.Fatalf("the relays did not both end within %v", limit)
		}
	}
	return conn, agent
}

// echo sends msg left→right, then back right→left.
func echo(t *testing.T, rl *relayed, msg []byte) {
	t.Helper()
	for _, d := range [][2]net.Conn{{rl.left, rl.right}, {rl.right, rl.left}} {
		d[1].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := d[0].Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(d[1], got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("carried %q, %v; want %q", got, err, msg)
		}
		d[1].SetReadDeadline(time.Time{})
	}
}

// settle waits (bounded) for the goroutine count to fall to at most want,
// and returns the last count.
func settle(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// idle is long enough for every direction to park (pipe's linger is
// 100 ms).
const idle = 400 * time.Millisecond

func heldYamuxRelays(t *testing.T, useTLS bool, n int) {
	r := newRig(t, useTLS)
	// One relay first, parked, so that the process-wide parker's
	// goroutines are in the baseline.
	first := r.relay(t, pipe.Options{})
	echo(t, first, []byte("warm"))
	time.Sleep(idle)
	base := settle(0)
	all := make([]*relayed, n)
	for i := range all {
		all[i] = r.relay(t, pipe.Options{IdleTimeout: time.Hour})
		echo(t, all[i], []byte("hello, relay"))
	}
	// Before parking, a stream direction held a goroutine: 2 per relay
	// pair here (the connector's c→la, the agent's a→rb).
	if got := settle(base + 8); got > base+n/4 {
		t.Fatalf("%d idle yamux relay pairs hold %d goroutines (before: %d); want no goroutine per relay", n, got-base, base)
	}
	t.Logf("%d idle yamux relay pairs: %d goroutines more than before them", n, runtime.NumGoroutine()-base)
	// Parked directions resume: checksummed bytes both ways on a few.
	for _, rl := range all[:5] {
		bulk(t, rl, 256<<10)
	}
	var wg sync.WaitGroup
	for _, rl := range all {
		wg.Go(func() {
			rl.cancel()
			if c, a := rl.ended(t, 20*time.Second); c != nil || a != nil {
				t.Errorf("cancelled relays reported %v, %v", c, a)
			}
		})
	}
	wg.Wait()
}

// TestHeldYamuxRelaysHoldNoGoroutines: idle relays whose source is a yamux
// stream park, as socket directions do, and hold no goroutine; they
// resume on data and end on cancel.
func TestHeldYamuxRelaysHoldNoGoroutines(t *testing.T) { heldYamuxRelays(t, false, 200) }

// TestHeldYamuxTLSRelaysHoldNoGoroutines is the same over a TLS session.
func TestHeldYamuxTLSRelaysHoldNoGoroutines(t *testing.T) { heldYamuxRelays(t, true, 100) }

// bulk sends size random bytes each way at once across rl and checks
// their SHA-256 at the other end.
func bulk(t *testing.T, rl *relayed, size int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, d := range [][2]net.Conn{{rl.left, rl.right}, {rl.right, rl.left}} {
		data := make([]byte, size)
		rand.Read(data)
		want := sha256.Sum256(data)
		wg.Go(func() {
			if _, err := d[0].Write(data); err != nil {
				t.Errorf("write: %v", err)
			}
		})
		wg.Go(func() {
			d[1].SetReadDeadline(time.Now().Add(20 * time.Second))
			defer d[1].SetReadDeadline(time.Time{})
			h := sha256.New()
			if _, err := io.CopyN(h, d[1], int64(size)); err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("SHA-256 of %d bytes relayed differs", size)
			}
		})
	}
	wg.Wait()
}

// TestParkedYamuxDirectionResumes: a parked stream direction resumes on
// data, on the peer's FIN (the half-close crosses and the other way goes
// on), on the peer's close of its stream (FIN and abort), on the loss of
// the session, on the relay's close and on its idle timeout; over TCP
// and TLS sessions.
func TestParkedYamuxDirectionResumes(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "tcp"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) { parkedResumes(t, useTLS) })
	}
}

func parkedResumes(t *testing.T, useTLS bool) {
	t.Run("Data", func(t *testing.T) {
		rl := newRig(t, useTLS).relay(t, pipe.Options{})
		for range 3 {
			time.Sleep(idle)
			bulk(t, rl, 1<<20)
		}
	})
	t.Run("FIN", func(t *testing.T) {
		rl := newRig(t, useTLS).relay(t, pipe.Options{})
		echo(t, rl, []byte("x"))
		time.Sleep(idle)
		rl.left.CloseWrite()
		rl.right.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := rl.right.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after left's FIN, right read %d, %v; want EOF", n, err)
		}
		time.Sleep(idle) // the other way parks again
		if _, err := rl.right.Write([]byte("still")); err != nil {
			t.Fatal(err)
		}
		rl.right.CloseWrite()
		got, err := io.ReadAll(rl.left)
		if err != nil || string(got) != "still" {
			t.Fatalf("after a half-close, left read %q, %v; want \"still\"", got, err)
		}
		if c, a := rl.ended(t, 10*time.Second); c != nil || a != nil {
			t.Fatalf("half-closed relays ended with %v, %v; want nil", c, a)
		}
	})
	t.Run("PeerClose", func(t *testing.T) {
		r := newRig(t, useTLS)
		rl := r.relay(t, pipe.Options{})
		echo(t, rl, []byte("x"))
		time.Sleep(idle)
		// The connector's stream closed under its relay (a transport
		// dropping streams): its relay ends, and the agent's parked
		// direction sees the FIN and the abort.
		transporttest.CloseStream(r.ep, rl.c)
		rl.right.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(rl.right); err != nil {
			t.Fatalf("right after the stream's close: %v", err)
		}
		rl.right.Write([]byte("late")) // fails on the aborted stream, or is dropped
		rl.right.Close()
		rl.ended(t, 10*time.Second)
		rl.left.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(rl.left); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("left after the stream's close: %v", err)
		}
	})
	t.Run("SessionLost", func(t *testing.T) {
		r := newRig(t, useTLS)
		rl := r.relay(t, pipe.Options{})
		echo(t, rl, []byte("x"))
		time.Sleep(idle)
		r.px.cut() // the session's connection breaks
		c, a := rl.ended(t, 10*time.Second)
		if !errors.Is(c, yamux.ErrSessionLost) || !errors.Is(a, yamux.ErrSessionLost) {
			t.Fatalf("relays ended with %v; %v; want ErrSessionLost", c, a)
		}
		for _, end := range []*net.TCPConn{rl.left, rl.right} {
			end.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAll(end); err != nil && !isReset(err) {
				t.Fatalf("a client after the session's loss: %v", err)
			}
		}
	})
	t.Run("RelayClose", func(t *testing.T) {
		rl := newRig(t, useTLS).relay(t, pipe.Options{})
		echo(t, rl, []byte("x"))
		time.Sleep(idle)
		rl.cancel()
		if c, a := rl.ended(t, 10*time.Second); c != nil || a != nil {
			t.Fatalf("cancelled relays ended with %v, %v; want nil", c, a)
		}
	})
	t.Run("IdleTimeout", func(t *testing.T) {
		rl := newRig(t, useTLS).relay(t, pipe.Options{IdleTimeout: 700 * time.Millisecond})
		echo(t, rl, []byte("x"))
		start := time.Now()
		c, a := rl.ended(t, 10*time.Second)
		if !errors.Is(c, pipe.ErrIdleTimeout) && !errors.Is(a, pipe.ErrIdleTimeout) {
			t.Fatalf("idle relays ended with %v, %v; want ErrIdleTimeout", c, a)
		}
		t.Logf("idle relays ended after %v", time.Since(start).Round(time.Millisecond))
	})
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// BenchmarkRelayPingPong is a 64-byte round trip through the connector's
// and the agent's relays around one yamux stream (TCP session), the path
// whose stream directions park when idle; the directions stay awake.
func BenchmarkRelayPingPong(b *testing.B) {
	rl := newRig(b, false).relay(b, pipe.Options{})
	msg := make([]byte, 64)
	got := make([]byte, 64)
	go func() { io.Copy(rl.right, rl.right) }()
	b.ResetTimer()
	for b.Loop() {
		if _, err := rl.left.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rl.left, got); err != nil {
			b.Fatal(err)
		}
	}
}
