package yamux_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// BenchmarkPingPongCost is BenchmarkPingPong in dev mode and with the
// session under TLS (as a connector outside dev mode runs it), a 64-byte
// message each way per iteration, reporting besides the time what a round
// trip costs the process: CPU time (cpu-ns/op) and context switches
// (csw/op, voluntary and involuntary: each is a thread that went to sleep
// or was preempted, mostly goroutine hand-offs that woke another thread).
// On a shared, loaded machine these move less than ns/op.
// Run: go test -run '^$' -bench PingPongCost -benchtime 20000x ./transports/yamux/
func BenchmarkPingPongCost(b *testing.B) {
	b.Run("dev", func(b *testing.B) {
		ep, s := transporttest.Setup(b, newTransport(b), "tcp", sdk.EndpointConfig{}, sdk.DialConfig{})
		pingPongCost(b, ep, s)
	})
	b.Run("tls", func(b *testing.B) {
		srv, cli := transporttest.TLSConfigs(b)
		ep, s := transporttest.Setup(b, newTransport(b), "tcp", sdk.EndpointConfig{TLS: srv}, sdk.DialConfig{TLS: cli})
		pingPongCost(b, ep, s)
	})
}

func pingPongCost(b *testing.B, ep sdk.Endpoint, s sdk.Session) {
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	transporttest.BenchPingPong(b, func(tb testing.TB) (net.Conn, net.Conn) {
		return transporttest.Pair(tb, context.Background(), ep, s)
	})
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	csw := after.Nvcsw + after.Nivcsw - before.Nvcsw - before.Nivcsw
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(csw)/float64(b.N), "csw/op")
}
