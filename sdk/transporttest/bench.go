package transporttest

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// PairFunc returns the two ends of a new stream: connector side, agent
// side. The caller closes both.
type PairFunc func(tb testing.TB) (c, a net.Conn)

// Pairs starts an endpoint of tr on loopback (network "tcp" or "udp";
// empty means "tcp") and one session to it; each call of the PairFunc
// pairs a new stream on them. Both are closed when tb's test ends.
func Pairs(tb testing.TB, tr sdk.Transport, network string) PairFunc {
	tb.Helper()
	ep, s := Setup(tb, tr, network, sdk.EndpointConfig{}, sdk.DialConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	return func(tb testing.TB) (net.Conn, net.Conn) {
		tb.Helper()
		type res struct {
			a   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			a, err := s.Accept(ctx)
			ch <- res{a, err}
		}()
		c, err := ep.Open(ctx)
		r := <-ch
		if err != nil || r.err != nil {
			if c != nil {
				CloseStream(ep, c)
			}
			if r.a != nil {
				r.a.Close()
			}
			tb.Fatalf("pairing a stream: Endpoint.Open: %v; Session.Accept: %v", err, r.err)
		}
		return observed(ep, c), r.a
	}
}

// TCPPairs pairs plain loopback TCP connections, one per stream: the
// baseline a transport's benchmarks compare with.
func TCPPairs(tb testing.TB) PairFunc {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return func(tb testing.TB) (net.Conn, net.Conn) {
		tb.Helper()
		ch := make(chan net.Conn, 1)
		go func() {
			a, _ := ln.Accept()
			ch <- a
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		a := <-ch
		if err != nil || a == nil {
			tb.Fatalf("pairing TCP connections: %v", err)
		}
		return c, a
	}
}

// Benchmark runs the shared benchmarks as sub-benchmarks (Throughput,
// PingPong, Open, Held), each on the pairs mk returns anew:
//
//	func BenchmarkTransport(b *testing.B) {
//		transporttest.Benchmark(b, func(tb testing.TB) transporttest.PairFunc {
//			return transporttest.Pairs(tb, mytransport.New(), "tcp")
//		})
//	}
//	func BenchmarkTCP(b *testing.B) { transporttest.Benchmark(b, transporttest.TCPPairs) }
//
// Held is meant for -benchtime 1x (see [BenchHeld]).
func Benchmark(b *testing.B, mk func(tb testing.TB) PairFunc) {
	b.Run("Throughput", func(b *testing.B) { BenchThroughput(b, mk(b)) })
	b.Run("PingPong", func(b *testing.B) { BenchPingPong(b, mk(b)) })
	b.Run("Open", func(b *testing.B) { BenchOpen(b, mk(b)) })
	b.Run("Held", func(b *testing.B) { BenchHeld(b, mk(b)) })
}

// BenchThroughput writes b.N chunks of 64 KiB one way on one stream and
// checks that every byte arrived.
func BenchThroughput(b *testing.B, pairs PairFunc) {
	c, a := pairs(b)
	defer c.Close()
	defer a.Close()
	buf := make([]byte, 64<<10)
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, a)
		done <- n
	}()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if cw, ok := c.(sdk.CloseWriter); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("received %d bytes, want %d", n, b.N*len(buf))
	}
}

// BenchPingPong does b.N 64-byte round trips on one stream. On Unix it
// also reports what a round trip costs the process: CPU time (cpu-ns/op)
// and context switches (csw/op: threads that went to sleep or were
// preempted, mostly goroutine hand-offs that woke another thread), which
// move less than ns/op on a shared, loaded machine.
func BenchPingPong(b *testing.B, pairs PairFunc) {
	c, a := pairs(b)
	defer c.Close()
	defer a.Close()
	go io.Copy(a, a)
	msg := make([]byte, 64)
	got := make([]byte, 64)
	b.ResetTimer()
	cpu0, csw0, ok := processCost()
	for range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
	if cpu1, csw1, ok1 := processCost(); ok && ok1 {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(csw1-csw0)/float64(b.N), "csw/op")
	}
}

// BenchOpen pairs, uses (one byte each way) and closes b.N streams.
func BenchOpen(b *testing.B, pairs PairFunc) {
	one := make([]byte, 1)
	b.ResetTimer()
	for range b.N {
		c, a := pairs(b)
		c.Write(one)
		io.ReadFull(a, one)
		a.Write(one)
		io.ReadFull(c, one)
		c.Close()
		a.Close()
	}
}

// BenchHeld reports the heap and goroutines that 1000 held, used streams
// cost, per stream (both ends, in one process; kernel socket buffers are
// not counted). Only the first iteration is measured, on fresh pairs, so
// that streams closed by an earlier iteration and not yet reclaimed do
// not blur it; run it with -benchtime 1x.
func BenchHeld(b *testing.B, pairs PairFunc) {
	const n = 1000
	one := make([]byte, 1)
	var perStream, gPerStream float64
	for i := range b.N {
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		conns := make([]net.Conn, 0, 2*n)
		for range n {
			c, a := pairs(b)
			c.Write(one)
			io.ReadFull(a, one)
			conns = append(conns, c, a)
		}
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if i == 0 {
			perStream = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			gPerStream = float64(runtime.NumGoroutine()-g0) / n
		}
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(perStream, "heapB/stream")
	b.ReportMetric(gPerStream, "goroutines/stream")
}
