package daemon

import (
	"net"
	"testing"
)

// TestAPIUnprotectedDecision is the start-up warning's decision: only a
// loopback listener, or a lock, keeps it quiet.
func TestAPIUnprotectedDecision(t *testing.T) {
	for _, tt := range []struct {
		addr            string
		token, clientCA bool
		want            bool
	}{
		{"127.0.0.1:8080", false, false, false},
		{"127.0.0.2:8080", false, false, false},
		{"[::1]:8080", false, false, false},
		{"0.0.0.0:443", false, false, true},
		{"[::]:443", false, false, true},
		{"192.0.2.10:443", false, false, true},
		{"[2001:db8::1]:443", false, false, true},
		{"0.0.0.0:443", true, false, false},
		{"0.0.0.0:443", false, true, false},
		{"192.0.2.10:443", true, true, false},
	} {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := apiUnprotected(addr, tt.token, tt.clientCA); got != tt.want {
			t.Errorf("apiUnprotected(%s, token=%v, ca=%v) = %v, want %v", tt.addr, tt.token, tt.clientCA, got, tt.want)
		}
	}
	if !apiUnprotected(&net.UnixAddr{Name: "x", Net: "unix"}, false, false) {
		t.Error("an address that is not TCP counts as protected")
	}
}
