package streamkit_test

import (
	"testing"

	"github.com/iofog/iofog-connector/sdk/streamkit"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// BenchmarkTCPKit runs the shared benchmarks (transporttest.Benchmark)
// against the kit over TCP; BenchmarkTCP is the baseline of bare TCP
// connections. Run Held with -benchtime 1x.
func BenchmarkTCPKit(b *testing.B) {
	transporttest.Benchmark(b, func(tb testing.TB) transporttest.PairFunc {
		return transporttest.Pairs(tb, streamkit.New(streamkit.Config{Name: "tcpkit", Listen: streamkit.ListenTCP, Dial: streamkit.DialTCP}), "tcp")
	})
}

func BenchmarkTCP(b *testing.B) { transporttest.Benchmark(b, transporttest.TCPPairs) }

// BenchmarkTCPKitNoIdle is BenchmarkTCPKit with no idle links: every
// stream is dialled when the connector asks for it.
func BenchmarkTCPKitNoIdle(b *testing.B) {
	transporttest.Benchmark(b, func(tb testing.TB) transporttest.PairFunc {
		return transporttest.Pairs(tb, streamkit.New(streamkit.Config{Name: "tcpkit", Listen: streamkit.ListenTCP, Dial: streamkit.DialTCP, IdleLinks: -1}), "tcp")
	})
}
