package plugin

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// toPBOrigin is o for the wire, or nil when ok is false or o is invalid.
func toPBOrigin(o sdk.Origin, ok bool) *pb.Origin {
	o = o.Normalize()
	if !ok || o.Validate() != nil {
		return nil
	}
	return &pb.Origin{
		ClientIp: o.Client.Addr().AsSlice(), ClientPort: uint32(o.Client.Port()),
		LocalIp: o.Local.Addr().AsSlice(), LocalPort: uint32(o.Local.Port()),
		Proxy: uint32(o.Proxy),
	}
}

// fromPBOrigin checks and converts an origin from the wire: addresses of
// 4 or 16 bytes (not IPv4-mapped), ports up to 65535, a PROXY protocol
// version of 1 or 2. Anything else is an error; nil is no origin.
func fromPBOrigin(p *pb.Origin) (o sdk.Origin, ok bool, err error) {
	if p == nil {
		return o, false, nil
	}
	ap := func(ip []byte, port uint32) (netip.AddrPort, error) {
		a, good := netip.AddrFromSlice(ip)
		if !good || a.Is4In6() || port > 65535 {
			return netip.AddrPort{}, fmt.Errorf("plugin: malformed origin address %x port %d", ip, port)
		}
		return netip.AddrPortFrom(a, uint16(port)), nil
	}
	if o.Client, err = ap(p.GetClientIp(), p.GetClientPort()); err != nil {
		return sdk.Origin{}, false, err
	}
	if o.Local, err = ap(p.GetLocalIp(), p.GetLocalPort()); err != nil {
		return sdk.Origin{}, false, err
	}
	if p.GetProxy() > 255 {
		return sdk.Origin{}, false, fmt.Errorf("plugin: malformed origin: PROXY version %d", p.GetProxy())
	}
	o.Proxy = sdk.ProxyVersion(p.GetProxy())
	if err := o.Validate(); err != nil {
		return sdk.Origin{}, false, fmt.Errorf("plugin: malformed origin: %w", err)
	}
	return o, true, nil
}

// streamOrigin returns the origin a transport's stream reports and the
// connection to relay: the one it wraps when it gives it back (NetConn),
// so that the plugin's relay can splice a bare socket.
func streamOrigin(c net.Conn) (net.Conn, *pb.Origin) {
	os, ok := c.(sdk.OriginStream)
	if !ok {
		return c, nil
	}
	o, ok := os.Origin()
	if nc, wraps := c.(interface{ NetConn() net.Conn }); wraps {
		c = nc.NetConn()
	}
	return c, toPBOrigin(o, ok)
}

// originConn is a stream claimed from a plugin that reported its origin.
type originConn struct {
	net.Conn
	origin sdk.Origin
}

// Origin implements [sdk.OriginStream].
func (c *originConn) Origin() (sdk.Origin, bool) { return c.origin, true }

// NetConn returns the claimed connection.
func (c *originConn) NetConn() net.Conn { return c.Conn }

// CloseWrite implements [sdk.CloseWriter] when the wrapped connection does.
func (c *originConn) CloseWrite() error {
	if cw, ok := c.Conn.(sdk.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("plugin: %T cannot half-close", c.Conn)
}

var (
	_ sdk.OriginStream = (*originConn)(nil)
	_ sdk.CloseWriter  = (*originConn)(nil)
)
