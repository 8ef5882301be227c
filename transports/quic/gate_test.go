package quic

import (
	"context"
	"net"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/iofog/iofog-connector/sdk/admission"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// TestPendingGate: the ConnContext callback refuses a source's connection
// beyond its cap of pending handshakes, and gives a place back when the
// connection's context ends or its passcode handshake is over.
func TestPendingGate(t *testing.T) {
	tr, err := New(Config{HandshakeTimeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{MaxLinks: 1})
	defer ep.Close()
	gate := tr.pendingGate(ep)
	info := &quicgo.ClientInfo{RemoteAddr: &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 4242}}
	limit := admission.PendingPerSource(1)
	cancels := make([]context.CancelFunc, 0, limit)
	var ctxs []context.Context
	for i := range limit {
		ctx, cancel := context.WithCancel(context.Background())
		cctx, err := gate(ctx, info)
		if err != nil {
			t.Fatalf("connection %d of %d refused: %v", i+1, limit, err)
		}
		cancels = append(cancels, cancel)
		ctxs = append(ctxs, cctx)
	}
	if _, err := gate(context.Background(), info); err == nil {
		t.Fatal("a connection over the per-source cap was let in")
	}
	other := &quicgo.ClientInfo{RemoteAddr: &net.UDPAddr{IP: net.ParseIP("192.0.2.2"), Port: 4242}}
	if _, err := gate(context.Background(), other); err != nil {
		t.Fatalf("another source refused: %v", err)
	}
	// A connection that ended frees its place.
	cancels[0]()
	waitGate(t, gate, info)
	// So does the end of the passcode handshake (admit's leave).
	ctxs[1].Value(pendingKey{}).(func())()
	waitGate(t, gate, info)
	for _, c := range cancels {
		c()
	}
	if got := ep.Stats().Failed; got < 1 {
		t.Errorf("Stats().Failed = %d, want the refusal counted", got)
	}
}

func waitGate(t *testing.T, gate func(context.Context, *quicgo.ClientInfo) (context.Context, error), info *quicgo.ClientInfo) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := gate(context.Background(), info); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no place given back")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
