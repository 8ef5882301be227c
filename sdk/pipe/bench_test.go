package pipe

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// benchRelay measures one-way throughput from left to right across a
// relay built by join.
func benchRelay(b *testing.B, join func(a, c net.Conn)) {
	left, a := tcpPair(b)
	c, right := tcpPair(b)
	go join(a, c)
	buf := make([]byte, 256<<10)
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, right)
		done <- n
	}()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := left.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	left.(*net.TCPConn).CloseWrite()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("relayed %d bytes, want %d", n, b.N*len(buf))
	}
}

// BenchmarkJoin is our relay: splice through a pipe taken per burst.
func BenchmarkJoin(b *testing.B) {
	benchRelay(b, func(a, c net.Conn) { Join(context.Background(), a, c) })
}

// BenchmarkStdlibCopy is io.Copy between the same sockets, the standard
// library's splice, which holds a pipe for the life of the copy.
func BenchmarkStdlibCopy(b *testing.B) {
	benchRelay(b, func(a, c net.Conn) {
		io.Copy(c, a)
		c.(*net.TCPConn).CloseWrite()
	})
}

// BenchmarkBufferedCopy copies through a 32 KiB user-space buffer, the
// path taken when a side is not a socket.
func BenchmarkBufferedCopy(b *testing.B) {
	benchRelay(b, func(a, c net.Conn) {
		io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{a}, make([]byte, 32<<10))
		c.(*net.TCPConn).CloseWrite()
	})
}

// BenchmarkJoinIdleTimeout is BenchmarkJoin with an idle timeout set: the
// same splice path plus a clock read and an atomic store per transfer.
func BenchmarkJoinIdleTimeout(b *testing.B) {
	benchRelay(b, func(a, c net.Conn) {
		JoinWith(context.Background(), a, c, Options{IdleTimeout: time.Minute})
	})
}

// BenchmarkActivityTouch is the per-transfer cost of the idle timeout.
func BenchmarkActivityTouch(b *testing.B) {
	a := newActivity()
	for range b.N {
		a.touch()
	}
}

// BenchmarkJoinPingPong is the relay's latency: one 64-byte round trip
// per op from a client through Join to a peer that echoes it back, the
// message size of connector-bench's latency load.
func BenchmarkJoinPingPong(b *testing.B) {
	left, a := tcpPair(b)
	c, right := tcpPair(b)
	go Join(context.Background(), a, c)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(right, buf); err != nil {
				return
			}
			if _, err := right.Write(buf); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	left.SetDeadline(time.Now().Add(time.Minute))
	for b.Loop() {
		if _, err := left.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(left, buf); err != nil {
			b.Fatal(err)
		}
	}
}
