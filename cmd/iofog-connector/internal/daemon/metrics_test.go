package daemon

import (
	"net"
	"testing"
)

// TestMetricsExposedDecision is the start-up warning's decision: only a
// loopback listener keeps it quiet.
func TestMetricsExposedDecision(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9478": false, "127.0.0.2:9478": false, "[::1]:9478": false,
		"0.0.0.0:9478": true, "[::]:9478": true, "192.0.2.10:9478": true, "[2001:db8::1]:9478": true,
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := metricsExposed(a); got != want {
			t.Errorf("metricsExposed(%s) = %v, want %v", addr, got, want)
		}
	}
	if !metricsExposed(&net.UnixAddr{Name: "x", Net: "unix"}) {
		t.Error("an address that is not TCP counts as loopback")
	}
}
