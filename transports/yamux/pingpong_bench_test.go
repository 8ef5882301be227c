package yamux_test

import (
	"context"
	"net"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// BenchmarkPingPongCost is BenchmarkPingPong in dev mode and with the
// session under TLS (as a connector outside dev mode runs it), a 64-byte
// message each way per iteration; transporttest.BenchPingPong reports what
// a round trip costs the process besides the time (cpu-ns/op, csw/op).
// Run: go test -run '^$' -bench PingPongCost -benchtime 20000x ./transports/yamux/
func BenchmarkPingPongCost(b *testing.B) {
	b.Run("dev", func(b *testing.B) {
		ep, s := transporttest.Setup(b, newTransport(b), "tcp", sdk.EndpointConfig{}, sdk.DialConfig{})
		transporttest.BenchPingPong(b, func(tb testing.TB) (net.Conn, net.Conn) { return transporttest.Pair(tb, context.Background(), ep, s) })
	})
	b.Run("tls", func(b *testing.B) {
		srv, cli := transporttest.TLSConfigs(b)
		ep, s := transporttest.Setup(b, newTransport(b), "tcp", sdk.EndpointConfig{TLS: srv}, sdk.DialConfig{TLS: cli})
		transporttest.BenchPingPong(b, func(tb testing.TB) (net.Conn, net.Conn) { return transporttest.Pair(tb, context.Background(), ep, s) })
	})
}
