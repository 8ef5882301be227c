package sdk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ProxyVersion selects the PROXY protocol header (HAProxy's "PROXY
// protocol" specification) an agent writes to its local service before a
// stream's first byte, so that the service sees the public client's
// address instead of the agent's.
type ProxyVersion uint8

// PROXY protocol versions.
const (
	// ProxyNone writes no header.
	ProxyNone ProxyVersion = 0
	// ProxyV1 writes the text header, "PROXY TCP4 ... \r\n".
	ProxyV1 ProxyVersion = 1
	// ProxyV2 writes the binary header with the PROXY command.
	ProxyV2 ProxyVersion = 2
)

// String returns "" for [ProxyNone], "v1", "v2", or "v<n>" for a version
// this package does not know; it is the form mappings store and the API
// shows.
func (v ProxyVersion) String() string {
	switch v {
	case ProxyNone:
		return ""
	case ProxyV1:
		return "v1"
	case ProxyV2:
		return "v2"
	}
	return fmt.Sprintf("v%d", uint8(v))
}

// ParseProxyVersion parses the form [ProxyVersion.String] returns: "" (off),
// "v1" or "v2". Anything else is an error wrapping [ErrInvalidConfig].
func ParseProxyVersion(s string) (ProxyVersion, error) {
	switch s {
	case "":
		return ProxyNone, nil
	case "v1":
		return ProxyV1, nil
	case "v2":
		return ProxyV2, nil
	}
	if len(s) > 16 {
		s = s[:16] + "..."
	}
	return ProxyNone, fmt.Errorf("%w: PROXY protocol version %q is not \"\" (off), \"v1\" or \"v2\"", ErrInvalidConfig, s)
}

// Origin is where a stream the connector opens toward an agent comes
// from: the public client it carries and the connector address that
// client connected to. The connector passes it to [Endpoint.Open] with
// [WithOrigin]; a transport that supports it carries it to the agent in
// its handshake's bind step, and the agent's stream from [Session.Accept]
// reports it through [OriginStream]. The agent then writes a PROXY
// protocol header of version Proxy to its local service.
//
// Origins are best effort by design: a transport that does not carry them
// (an older one, a plugin of an earlier release, or a legacy ioFog agent
// on the tcp transport) ignores the context value, and the stream works
// as before, without a header.
type Origin struct {
	// Client is the public client's address (its source address and
	// port).
	Client netip.AddrPort
	// Local is the address the client connected to: the connector's
	// public port, as the connector's socket saw it.
	Local netip.AddrPort
	// Proxy is the PROXY protocol header the agent writes; [ProxyNone]
	// means none, and transports do not carry such an origin.
	Proxy ProxyVersion
}

// Normalize returns o with IPv4-mapped IPv6 addresses as plain IPv4 (a
// dual-stack listener reports IPv4 clients that way) and without IPv6
// zones, which cannot cross to another host.
func (o Origin) Normalize() Origin {
	norm := func(ap netip.AddrPort) netip.AddrPort {
		if !ap.IsValid() {
			return ap
		}
		return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	}
	o.Client, o.Local = norm(o.Client), norm(o.Local)
	return o
}

// Validate returns an error wrapping [ErrInvalidConfig] unless o has a
// valid client and local address (IPv4 or IPv6, no zone) and Proxy is
// [ProxyV1] or [ProxyV2].
func (o Origin) Validate() error {
	switch {
	case o.Proxy != ProxyV1 && o.Proxy != ProxyV2:
		return fmt.Errorf("%w: origin: PROXY protocol version %d", ErrInvalidConfig, o.Proxy)
	case !o.Client.IsValid() || o.Client.Addr().Zone() != "":
		return fmt.Errorf("%w: origin: client address %v", ErrInvalidConfig, o.Client)
	case !o.Local.IsValid() || o.Local.Addr().Zone() != "":
		return fmt.Errorf("%w: origin: local address %v", ErrInvalidConfig, o.Local)
	}
	return nil
}

// OriginFromAddrs returns the origin of a stream for a client connection
// whose remote address is client and local address is local (as
// [net.Conn] reports them), normalized, with PROXY protocol version v. ok
// is false when either is not an IP address (a unix socket) or v is
// [ProxyNone].
func OriginFromAddrs(client, local net.Addr, v ProxyVersion) (o Origin, ok bool) {
	ap := func(a net.Addr) (netip.AddrPort, bool) {
		switch a := a.(type) {
		case *net.TCPAddr:
			return a.AddrPort(), true
		case *net.UDPAddr:
			return a.AddrPort(), true
		}
		return netip.AddrPort{}, false
	}
	c, ok1 := ap(client)
	l, ok2 := ap(local)
	o = Origin{Client: c, Local: l, Proxy: v}.Normalize()
	if !ok1 || !ok2 || o.Validate() != nil {
		return Origin{}, false
	}
	return o, true
}

type originKey struct{}

// WithOrigin returns a copy of ctx carrying o, for [Endpoint.Open]. An
// origin that is not valid ([Origin.Validate], after [Origin.Normalize])
// is not attached: ctx is returned as it is.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	o = o.Normalize()
	if o.Validate() != nil {
		return ctx
	}
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin [WithOrigin] attached to ctx, if any. A
// transport's [Endpoint.Open] calls it to learn what to carry.
func OriginFrom(ctx context.Context) (Origin, bool) {
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}

// OriginStream is an optional interface of a stream returned by
// [Session.Accept]: it reports the origin the connector sent with the
// stream. ok is false when the connector sent none (the mapping has no
// PROXY protocol, or the connector or transport does not carry origins).
//
// A transport that wraps its connection only to add this method may also
// give the wrapped connection back with a method NetConn() net.Conn; the
// agent (package sdk/agent) then relays that one, so that a bare
// *net.TCPConn keeps the kernel's zero-copy splice.
type OriginStream interface {
	Origin() (o Origin, ok bool)
}

// Wire form of an origin, shared by the transports that carry it:
//
//	format (1 byte, 1) | proxy version (1) | client | local
//
// where each address is a family byte (4 or 6), the address (4 or 16
// bytes) and the port (2 bytes, big endian).
const (
	originFormat byte = 1
	// MaxOriginLen is the most bytes [Origin.AppendBinary] appends and
	// [Origin.UnmarshalBinary] accepts.
	MaxOriginLen = 2 + 2*(1+16+2)
)

// errOrigin is wrapped by UnmarshalBinary's errors.
var errOrigin = errors.New("sdk: malformed origin")

// AppendBinary appends the wire form of o (at most [MaxOriginLen] bytes)
// to b. It fails, wrapping [ErrInvalidConfig], when o is not valid after
// [Origin.Normalize].
func (o Origin) AppendBinary(b []byte) ([]byte, error) {
	o = o.Normalize()
	if err := o.Validate(); err != nil {
		return b, err
	}
	b = append(b, originFormat, byte(o.Proxy))
	for _, ap := range [2]netip.AddrPort{o.Client, o.Local} {
		a := ap.Addr()
		if a.Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
		b = append(b, a.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, ap.Port())
	}
	return b, nil
}

// UnmarshalBinary parses the wire form of an origin, exactly: trailing
// bytes, an unknown format or family, an IPv4-mapped IPv6 address and a
// PROXY protocol version other than 1 or 2 are refused with an error, and
// o is then left unchanged. It never reads past data, and data longer than
// [MaxOriginLen] is refused.
func (o *Origin) UnmarshalBinary(data []byte) error {
	if len(data) > MaxOriginLen {
		return fmt.Errorf("%w: %d bytes, at most %d", errOrigin, len(data), MaxOriginLen)
	}
	if len(data) < 2 || data[0] != originFormat {
		return fmt.Errorf("%w: unknown format", errOrigin)
	}
	got := Origin{Proxy: ProxyVersion(data[1])}
	rest := data[2:]
	for _, dst := range [2]*netip.AddrPort{&got.Client, &got.Local} {
		if len(rest) < 1 {
			return fmt.Errorf("%w: truncated", errOrigin)
		}
		n := 0
		switch rest[0] {
		case 4:
			n = 4
		case 6:
			n = 16
		default:
			return fmt.Errorf("%w: address family %d", errOrigin, rest[0])
		}
		if len(rest) < 1+n+2 {
			return fmt.Errorf("%w: truncated", errOrigin)
		}
		a, _ := netip.AddrFromSlice(rest[1 : 1+n])
		if a.Is4In6() {
			return fmt.Errorf("%w: IPv4-mapped IPv6 address", errOrigin)
		}
		*dst = netip.AddrPortFrom(a, binary.BigEndian.Uint16(rest[1+n:]))
		rest = rest[1+n+2:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errOrigin, len(rest))
	}
	if err := got.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errOrigin, err)
	}
	*o = got
	return nil
}
