package transporttest

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
)

// originOf returns the origin the agent's stream a reports.
func originOf(a net.Conn) (sdk.Origin, bool) {
	if os, ok := a.(sdk.OriginStream); ok {
		return os.Origin()
	}
	return sdk.Origin{}, false
}

func testOrigin(t *testing.T, e *env) {
	if !e.opts.Origins {
		t.Skip("the transport does not carry origins (Options.Origins is false)")
	}
	ep, s := e.setup()
	for i, want := range []sdk.Origin{
		{Client: netip.MustParseAddrPort("127.0.0.2:40123"), Local: netip.MustParseAddrPort("[::1]:7001"), Proxy: sdk.ProxyV1},
		{Client: netip.MustParseAddrPort("[2001:db8::2]:1"), Local: netip.MustParseAddrPort("[2001:db8::1]:65535"), Proxy: sdk.ProxyV2},
	} {
		open := func(ctx context.Context) (net.Conn, error) { return ep.Open(sdk.WithOrigin(ctx, want)) }
		c, a := e.join(open, s.Accept, "Endpoint.Open with an origin", "Session.Accept")
		got, ok := originOf(a)
		if !ok || got != want {
			t.Fatalf("stream %d: the agent's stream (%T) reports origin %+v, %v; want %+v", i, a, got, ok, want)
		}
		if err := exchange(c, a, "with an origin"); err != nil {
			t.Fatalf("stream %d with an origin: %v", i, err)
		}
		if _, ok := a.(sdk.CloseWriter); !ok {
			t.Fatalf("the agent's stream with an origin (%T) does not implement sdk.CloseWriter", a)
		}
		c.Close()
		a.Close()
	}
	c, a := e.pair(ep, s)
	if o, ok := originOf(a); ok {
		t.Fatalf("a stream opened without an origin reports %+v", o)
	}
	if err := exchange(c, a, "without an origin"); err != nil {
		t.Fatalf("stream without an origin: %v", err)
	}
}
