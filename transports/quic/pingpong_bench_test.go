package quic_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/quic"
)

// BenchmarkPingPongCost is BenchmarkPingPong (a 64-byte message each way
// per iteration) with UDP GRO on (the default) and off, reporting besides
// the time what a round trip costs the process: CPU time (cpu-ns/op) and
// context switches (csw/op: threads that went to sleep or were
// preempted, mostly goroutine hand-offs that woke another thread). On a
// shared, loaded machine these move less than ns/op.
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
		})
	}
}
