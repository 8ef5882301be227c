package quic_test

import (
	"testing"

	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/quic"
)

// The benchmarks measure the transport on loopback with the shared loads
// of sdk/transporttest; BenchmarkTCP* run the same loads over plain TCP
// connections (one per stream) as the baseline.
// Run: go test -run '^$' -bench . -benchmem ./transports/quic/

func quicPairs(b *testing.B) transporttest.PairFunc {
	return transporttest.Pairs(b, newTransport(b, quic.Config{}), "udp")
}

func BenchmarkThroughput(b *testing.B) { transporttest.BenchThroughput(b, quicPairs(b)) }
func BenchmarkPingPong(b *testing.B)   { transporttest.BenchPingPong(b, quicPairs(b)) }
func BenchmarkOpen(b *testing.B)       { transporttest.BenchOpen(b, quicPairs(b)) }
func BenchmarkHeld(b *testing.B)       { transporttest.BenchHeld(b, quicPairs(b)) }

func BenchmarkTCPThroughput(b *testing.B) {
	transporttest.BenchThroughput(b, transporttest.TCPPairs(b))
}
func BenchmarkTCPPingPong(b *testing.B) { transporttest.BenchPingPong(b, transporttest.TCPPairs(b)) }
func BenchmarkTCPOpen(b *testing.B)     { transporttest.BenchOpen(b, transporttest.TCPPairs(b)) }
func BenchmarkTCPHeld(b *testing.B)     { transporttest.BenchHeld(b, transporttest.TCPPairs(b)) }
