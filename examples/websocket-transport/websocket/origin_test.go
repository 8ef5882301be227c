package websocket

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

var testOrigin = sdk.Origin{
	Client: netip.MustParseAddrPort("127.0.0.2:40123"),
	Local:  netip.MustParseAddrPort("[::1]:7001"),
	Proxy:  sdk.ProxyV2,
}

// TestOriginOlderConnector: against a connector of an earlier release
// (it closes a 'c' control connection unanswered), the agent dials again
// with 'C' and works; its streams carry no origin.
func TestOriginOlderConnector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := Transport{noOrigins: true}.Listen(ctx, sdk.EndpointConfig{Addr: freeAddr(t), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	s, err := New().Dial(ctx, sdk.DialConfig{Addr: ep.(*endpoint).ln.Addr().String(), Passcode: "pw"})
	if err != nil {
		t.Fatalf("Dial of an older connector: %v", err)
	}
	defer s.Close()
	c, a := pair(t, sdk.WithOrigin(ctx, testOrigin), ep, s)
	if o, ok := a.(sdk.OriginStream).Origin(); ok {
		t.Fatalf("origin %+v from an older connector", o)
	}
	c.Write([]byte("hi"))
	got := make([]byte, 2)
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "hi" {
		t.Fatalf("stream from an older connector: %q %v", got, err)
	}
	if sess := ep.(*endpoint).Stats(); sess.Links != 1 {
		t.Fatalf("links %d, want the one session", sess.Links)
	}
}

// TestOriginMessage: 'Q' round trips and malformed ones are refused.
func TestOriginMessage(t *testing.T) {
	b := originMsg(9, testOrigin)
	m, err := readMsg(bytes.NewReader(b))
	if err != nil || m.kind != 'Q' || m.id != 9 || m.origin != testOrigin {
		t.Fatalf("readMsg(%x) = %+v, %v", b, m, err)
	}
	for _, bad := range [][]byte{
		append(b[:9:9], sdk.MaxOriginLen+1),
		append(b[:9:9], 3, 1, 2, 4),
		b[:len(b)-1],
	} {
		if _, err := readMsg(bytes.NewReader(bad)); err == nil {
			t.Errorf("readMsg(%x) accepted", bad)
		}
	}
}
