package quic_test

import (
	"context"
	"net"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/quic"
)

// BenchmarkPingPongCost is BenchmarkPingPong (a 64-byte message each way
// per iteration) with UDP GRO on (the default) and off;
// transporttest.BenchPingPong reports what a round trip costs the process
// besides the time (cpu-ns/op, csw/op).
// Run: go test -run '^$' -bench PingPongCost -benchtime 20000x ./transports/quic/
func BenchmarkPingPongCost(b *testing.B) {
	for _, tt := range []struct {
		name string
		cfg  quic.Config
	}{
		{"gro", quic.Config{}},
		{"nogro", quic.Config{DisableGRO: true}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			ep, s := transporttest.Setup(b, newTransport(b, tt.cfg), "udp", sdk.EndpointConfig{}, sdk.DialConfig{})
			transporttest.BenchPingPong(b, func(tb testing.TB) (net.Conn, net.Conn) {
				return transporttest.Pair(tb, context.Background(), ep, s)
			})
		})
	}
}
