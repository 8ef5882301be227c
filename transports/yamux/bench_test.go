package yamux_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/yamux"
)

// The benchmarks measure the transport on loopback with the shared loads
// of sdk/transporttest; BenchmarkTCP* run the same loads over plain TCP
// connections (one per stream) as the baseline.
// Run: go test -run '^$' -bench . -benchmem ./transports/yamux/

func yamuxPairs(b *testing.B) transporttest.PairFunc {
	return transporttest.Pairs(b, newTransport(b), "tcp")
}

func BenchmarkThroughput(b *testing.B) { transporttest.BenchThroughput(b, yamuxPairs(b)) }
func BenchmarkPingPong(b *testing.B)   { transporttest.BenchPingPong(b, yamuxPairs(b)) }
func BenchmarkOpen(b *testing.B)       { transporttest.BenchOpen(b, yamuxPairs(b)) }
func BenchmarkHeld(b *testing.B)       { transporttest.BenchHeld(b, yamuxPairs(b)) }

func BenchmarkTCPThroughput(b *testing.B) {
	transporttest.BenchThroughput(b, transporttest.TCPPairs(b))
}
func BenchmarkTCPPingPong(b *testing.B) { transporttest.BenchPingPong(b, transporttest.TCPPairs(b)) }
func BenchmarkTCPOpen(b *testing.B)     { transporttest.BenchOpen(b, transporttest.TCPPairs(b)) }
func BenchmarkTCPHeld(b *testing.B)     { transporttest.BenchHeld(b, transporttest.TCPPairs(b)) }

// BenchmarkThroughputWindow compares one-stream throughput across
// MaxStreamWindowSize values (on loopback, where the RTT is tiny, the
// window matters through the number of window-update round trips).
func BenchmarkThroughputWindow(b *testing.B) {
	for _, w := range []uint32{256 << 10, 1 << 20, 4 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("%dKiB", w>>10), func(b *testing.B) {
			tr, err := yamux.New(yamux.Config{MaxStreamWindowSize: w}, nil)
			if err != nil {
				b.Fatal(err)
			}
			transporttest.BenchThroughput(b, transporttest.Pairs(b, tr, "tcp"))
		})
	}
}

// BenchmarkThroughputTLS is BenchmarkThroughput with the session under
// TLS, as a connector outside dev mode runs it.
func BenchmarkThroughputTLS(b *testing.B) {
	srv, cli := transporttest.TLSConfigs(b)
	ep, s := transporttest.Setup(b, newTransport(b), "tcp", sdk.EndpointConfig{TLS: srv}, sdk.DialConfig{TLS: cli})
	transporttest.BenchThroughput(b, func(tb testing.TB) (net.Conn, net.Conn) {
		return transporttest.Pair(tb, context.Background(), ep, s)
	})
}

// BenchmarkThroughputChunk is one-stream throughput by the size of the
// writes to the stream: sdk/pipe's relays write what one read of their
// source returned (at most its 32 KiB buffer), and each write is at least
// one yamux frame, sent by the session's send loop while the writer waits.
func BenchmarkThroughputChunk(b *testing.B) {
	for _, size := range []int{16 << 10, 32 << 10, 64 << 10, 128 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			c, a := yamuxPairs(b)(b)
			defer c.Close()
			defer a.Close()
			done := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, a)
				done <- n
			}()
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(sdk.CloseWriter).CloseWrite()
			if n := <-done; n != int64(b.N*size) {
				b.Fatalf("received %d bytes, want %d", n, b.N*size)
			}
		})
	}
}
