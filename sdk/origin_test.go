package sdk_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
)

// TestOriginBinary round-trips origins over IPv4 and IPv6 and checks the
// normalization of IPv4-mapped addresses and zones.
func TestOriginBinary(t *testing.T) {
	for _, o := range []sdk.Origin{
		{Client: netip.MustParseAddrPort("127.0.0.2:40000"), Local: netip.MustParseAddrPort("127.0.0.1:7001"), Proxy: sdk.ProxyV1},
		{Client: netip.MustParseAddrPort("[::1]:1"), Local: netip.MustParseAddrPort("[2001:db8::7]:65535"), Proxy: sdk.ProxyV2},
		{Client: netip.MustParseAddrPort("[::ffff:10.1.2.3]:9"), Local: netip.MustParseAddrPort("[fe80::1%lo]:80"), Proxy: sdk.ProxyV2},
	} {
		b, err := o.AppendBinary(nil)
		if err != nil {
			t.Fatalf("AppendBinary(%+v): %v", o, err)
		}
		if len(b) > sdk.MaxOriginLen {
			t.Fatalf("%d bytes, more than MaxOriginLen", len(b))
		}
		var got sdk.Origin
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary(%x): %v", b, err)
		}
		if want := o.Normalize(); got != want {
			t.Fatalf("round trip %+v, want %+v", got, want)
		}
		if got.Client.Addr().Is4In6() || got.Local.Addr().Zone() != "" {
			t.Fatalf("not normalized: %+v", got)
		}
	}
}

// TestOriginRefuses checks what the wire form and the context refuse.
func TestOriginRefuses(t *testing.T) {
	good := sdk.Origin{Client: netip.MustParseAddrPort("1.2.3.4:5"), Local: netip.MustParseAddrPort("6.7.8.9:10"), Proxy: sdk.ProxyV1}
	b, _ := good.AppendBinary(nil)
	for name, in := range map[string][]byte{
		"empty":     {},
		"format":    append([]byte{2}, b[1:]...),
		"proxy 0":   append([]byte{1, 0}, b[2:]...),
		"proxy 3":   append([]byte{1, 3}, b[2:]...),
		"family":    append([]byte{1, 1, 5}, b[3:]...),
		"truncated": b[:len(b)-1],
		"trailing":  append(append([]byte{}, b...), 0),
		"mapped":    {1, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4, 0, 1, 4, 1, 2, 3, 4, 0, 2},
		"too long":  make([]byte, sdk.MaxOriginLen+1),
	} {
		var o sdk.Origin
		if err := o.UnmarshalBinary(in); err == nil || o != (sdk.Origin{}) {
			t.Errorf("%s: UnmarshalBinary(%x) = %v, origin %+v", name, in, err, o)
		}
	}
	bad := good
	bad.Proxy = sdk.ProxyNone
	if _, err := bad.AppendBinary(nil); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("AppendBinary with no PROXY version: %v", err)
	}
	if _, ok := sdk.OriginFrom(sdk.WithOrigin(context.Background(), bad)); ok {
		t.Error("WithOrigin attached an origin with no PROXY version")
	}
	got, ok := sdk.OriginFrom(sdk.WithOrigin(context.Background(), good))
	if !ok || got != good {
		t.Errorf("OriginFrom = %+v, %v", got, ok)
	}
	if _, ok := sdk.OriginFrom(context.Background()); ok {
		t.Error("OriginFrom of a bare context")
	}
}

// TestOriginFromAddrs maps a dual-stack listener's IPv4-mapped addresses
// to IPv4 and refuses unix sockets.
func TestOriginFromAddrs(t *testing.T) {
	c := &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 40000}
	l := &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 7001}
	o, ok := sdk.OriginFromAddrs(c, l, sdk.ProxyV2)
	if !ok || o.Client != netip.MustParseAddrPort("127.0.0.2:40000") || o.Local != netip.MustParseAddrPort("127.0.0.1:7001") {
		t.Fatalf("OriginFromAddrs = %+v, %v", o, ok)
	}
	if _, ok := sdk.OriginFromAddrs(&net.UnixAddr{Name: "/x", Net: "unix"}, l, sdk.ProxyV1); ok {
		t.Fatal("OriginFromAddrs took a unix address")
	}
	if _, ok := sdk.OriginFromAddrs(c, l, sdk.ProxyNone); ok {
		t.Fatal("OriginFromAddrs took ProxyNone")
	}
}

// TestParseProxyVersion checks the stored forms.
func TestParseProxyVersion(t *testing.T) {
	for s, want := range map[string]sdk.ProxyVersion{"": sdk.ProxyNone, "v1": sdk.ProxyV1, "v2": sdk.ProxyV2} {
		v, err := sdk.ParseProxyVersion(s)
		if err != nil || v != want || v.String() != s {
			t.Errorf("ParseProxyVersion(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"V1", "1", "v3", "v2 ", "on"} {
		if _, err := sdk.ParseProxyVersion(s); !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("ParseProxyVersion(%q) = %v", s, err)
		}
	}
}

// FuzzOriginUnmarshal feeds arbitrary bytes to the origin parser, which
// reads network input in every transport that carries origins: it must
// not panic, must accept only valid origins, and what it accepts must
// encode back to the same bytes.
func FuzzOriginUnmarshal(f *testing.F) {
	o := sdk.Origin{Client: netip.MustParseAddrPort("127.0.0.2:40000"), Local: netip.MustParseAddrPort("[::1]:7001"), Proxy: sdk.ProxyV2}
	b, _ := o.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{1, 1, 4, 1, 2, 3, 4, 0, 1, 4, 1, 2, 3, 4, 0, 2})
	f.Add([]byte{1, 1, 6})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var o sdk.Origin
		if err := o.UnmarshalBinary(in); err != nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("accepted an invalid origin %+v: %v", o, err)
		}
		out, err := o.AppendBinary(nil)
		if err != nil || string(out) != string(in) {
			t.Fatalf("re-encoded %x as %x, %v", in, out, err)
		}
	})
}
