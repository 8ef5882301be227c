package relay

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
)

// originEndpoint records the origin each Open is given.
type originEndpoint struct {
	got chan originSeen
	ep  dialEndpoint
}

type originSeen struct {
	o  sdk.Origin
	ok bool
}

func (e originEndpoint) Open(ctx context.Context) (net.Conn, error) {
	o, ok := sdk.OriginFrom(ctx)
	e.got <- originSeen{o, ok}
	return e.ep.Open(ctx)
}

// TestPublicPassesOriginToOpen: with a PROXY version set, Open gets the
// client's address and the listener's, exactly; without one, none.
func TestPublicPassesOriginToOpen(t *testing.T) {
	watchdog(t)
	for _, v := range []sdk.ProxyVersion{sdk.ProxyV1, sdk.ProxyV2, sdk.ProxyNone} {
		ep := originEndpoint{got: make(chan originSeen, 1), ep: dialEndpoint{echoServer(t)}}
		addr, stop := servePublic(t, ep, PublicConfig{Proxy: v})
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		seen := <-ep.got
		c.Close()
		stop()
		if v == sdk.ProxyNone {
			if seen.ok {
				t.Fatalf("no PROXY version, yet Open got origin %+v", seen.o)
			}
			continue
		}
		want := sdk.Origin{
			Client: c.LocalAddr().(*net.TCPAddr).AddrPort(),
			Local:  netip.MustParseAddrPort(addr),
			Proxy:  v,
		}
		if !seen.ok || seen.o != want {
			t.Fatalf("%v: Open got origin %+v (%v), want %+v", v, seen.o, seen.ok, want)
		}
	}
}
