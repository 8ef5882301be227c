package quic_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/transports/quic"
)

// The benchmarks measure one transport on loopback; BenchmarkTCP* run the
// same loads over plain TCP connections (one per stream) as the baseline.
// Run: go test -run '^$' -bench . -benchmem ./transports/yamux/ ./transports/quic/

// pairFunc returns the two ends of a new stream: connector side, agent side.
type pairFunc func(tb testing.TB) (c, a net.Conn)

func transportPairs(b *testing.B, tr sdk.Transport) pairFunc {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ep.Close() })
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: listenAddr(b, ep), Passcode: "pw"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return func(tb testing.TB) (net.Conn, net.Conn) {
		ch := make(chan net.Conn, 1)
		go func() {
			a, err := s.Accept(ctx)
			if err != nil {
				tb.Error(err)
			}
			ch <- a
		}()
		c, err := ep.Open(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		a := <-ch
		if a == nil {
			tb.FailNow()
		}
		return c, a
	}
}

func tcpPairs(b *testing.B) pairFunc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return func(tb testing.TB) (net.Conn, net.Conn) {
		ch := make(chan net.Conn, 1)
		go func() {
			a, err := ln.Accept()
			if err != nil {
				tb.Error(err)
			}
			ch <- a
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		a := <-ch
		if a == nil {
			tb.FailNow()
		}
		return c, a
	}
}

// benchThroughput sends b.N chunks of 64 KiB one way on one stream.
func benchThroughput(b *testing.B, pairs pairFunc) {
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
	c.(sdk.CloseWriter).CloseWrite()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("received %d bytes, want %d", n, b.N*len(buf))
	}
}

// benchPingPong does b.N 64-byte round trips on one stream.
func benchPingPong(b *testing.B, pairs pairFunc) {
	c, a := pairs(b)
	defer c.Close()
	defer a.Close()
	go io.Copy(a, a)
	msg := make([]byte, 64)
	got := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOpen opens, uses (one byte each way) and closes b.N streams.
func benchOpen(b *testing.B, pairs pairFunc) {
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

// benchHeld reports the heap and goroutines that 1000 held, used streams
// cost, per stream (both ends, in one process; kernel socket buffers are
// not counted). Only the first iteration is measured, on a fresh
// endpoint, so that streams closed by an earlier iteration and not yet
// reclaimed by the transport do not blur it; run it with -benchtime 1x.
func benchHeld(b *testing.B, pairs pairFunc) {
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

func BenchmarkThroughput(b *testing.B) {
	benchThroughput(b, transportPairs(b, newTransport(b, quic.Config{})))
}
func BenchmarkPingPong(b *testing.B) {
	benchPingPong(b, transportPairs(b, newTransport(b, quic.Config{})))
}
func BenchmarkOpen(b *testing.B) { benchOpen(b, transportPairs(b, newTransport(b, quic.Config{}))) }
func BenchmarkHeld(b *testing.B) { benchHeld(b, transportPairs(b, newTransport(b, quic.Config{}))) }

func BenchmarkTCPThroughput(b *testing.B) { benchThroughput(b, tcpPairs(b)) }
func BenchmarkTCPPingPong(b *testing.B)   { benchPingPong(b, tcpPairs(b)) }
func BenchmarkTCPOpen(b *testing.B)       { benchOpen(b, tcpPairs(b)) }
func BenchmarkTCPHeld(b *testing.B)       { benchHeld(b, tcpPairs(b)) }
