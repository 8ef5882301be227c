package proxyproto_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/proxyproto"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestRoundTrip writes headers of both versions for IPv4, IPv6 and mixed
// pairs, reads them back with Parse and Read, and checks the exact bytes
// of the version 1 line and the version 2 header.
func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		v        sdk.ProxyVersion
		src, dst netip.AddrPort
		wantSrc  netip.AddrPort // as read back
		wantDst  netip.AddrPort
		wire     string // exact bytes, when checked
	}{
		{name: "v1 ipv4", v: sdk.ProxyV1, src: ap("127.0.0.2:41234"), dst: ap("127.0.0.1:7001"),
			wire: "PROXY TCP4 127.0.0.2 127.0.0.1 41234 7001\r\n"},
		{name: "v1 ipv6", v: sdk.ProxyV1, src: ap("[::1]:5"), dst: ap("[2001:db8::1]:65535"),
			wire: "PROXY TCP6 ::1 2001:db8::1 5 65535\r\n"},
		{name: "v1 mixed", v: sdk.ProxyV1, src: ap("10.0.0.1:1"), dst: ap("[::1]:2"),
			wantSrc: ap("[::ffff:10.0.0.1]:1"), wire: "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n"},
		{name: "v1 mapped ipv4", v: sdk.ProxyV1, src: ap("[::ffff:10.0.0.1]:1"), dst: ap("[::ffff:10.0.0.2]:2"),
			wantSrc: ap("10.0.0.1:1"), wantDst: ap("10.0.0.2:2"), wire: "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"},
		{name: "v2 ipv4", v: sdk.ProxyV2, src: ap("127.0.0.2:41234"), dst: ap("127.0.0.1:7001"),
			wire: "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x02\x7f\x00\x00\x01\xa1\x12\x1b\x59"},
		{name: "v2 ipv6", v: sdk.ProxyV2, src: ap("[::1]:443"), dst: ap("[fe80::1]:8443")},
		{name: "v2 mixed", v: sdk.ProxyV2, src: ap("[::1]:1"), dst: ap("192.0.2.1:2"), wantDst: ap("[::ffff:192.0.2.1]:2")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := proxyproto.Append([]byte("x"), c.v, c.src, c.dst)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 'x' {
				t.Fatal("Append overwrote the buffer")
			}
			b = b[1:]
			if c.wire != "" && string(b) != c.wire {
				t.Fatalf("wire %q, want %q", b, c.wire)
			}
			wantSrc, wantDst := c.wantSrc, c.wantDst
			if !wantSrc.IsValid() {
				wantSrc = c.src
			}
			if !wantDst.IsValid() {
				wantDst = c.dst
			}
			in := append(append([]byte{}, b...), "GET / HTTP/1.1\r\n"...)
			h, n, err := proxyproto.Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n != len(b) || h.Version != c.v || h.Local || h.Src != wantSrc || h.Dst != wantDst {
				t.Fatalf("Parse = %+v, %d; want version %d, %v -> %v, %d bytes", h, n, c.v, wantSrc, wantDst, len(b))
			}
			r := bytes.NewReader(in)
			h2, err := proxyproto.Read(r)
			if err != nil || h2 != h {
				t.Fatalf("Read = %+v, %v; want %+v", h2, err, h)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != "GET / HTTP/1.1\r\n" {
				t.Fatalf("Read consumed data after the header: left %q", rest)
			}
			// Every proper prefix is truncated, never an error or a header.
			for i := range len(b) {
				if _, _, err := proxyproto.Parse(b[:i]); !errors.Is(err, proxyproto.ErrTruncated) {
					t.Fatalf("Parse(prefix of %d bytes) = %v, want ErrTruncated", i, err)
				}
			}
		})
	}
}

// TestAppendRefuses checks that Append refuses what no header can say.
func TestAppendRefuses(t *testing.T) {
	for _, c := range []struct {
		v        sdk.ProxyVersion
		src, dst netip.AddrPort
	}{
		{sdk.ProxyNone, ap("1.2.3.4:1"), ap("1.2.3.4:2")},
		{3, ap("1.2.3.4:1"), ap("1.2.3.4:2")},
		{sdk.ProxyV1, netip.AddrPort{}, ap("1.2.3.4:2")},
		{sdk.ProxyV2, ap("[fe80::1%eth0]:1"), ap("[::1]:2")},
	} {
		if b, err := proxyproto.Append(nil, c.v, c.src, c.dst); !errors.Is(err, proxyproto.ErrInvalid) || len(b) != 0 {
			t.Errorf("Append(%d, %v, %v) = %q, %v; want ErrInvalid", c.v, c.src, c.dst, b, err)
		}
	}
}

// TestParseLocal reads the headers that carry no address.
func TestParseLocal(t *testing.T) {
	for _, in := range []string{
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00",
		"\r\n\r\n\x00\r\nQUIT\n\x20\x11\x00\x0c" + strings.Repeat("\x01", 12),
		"\r\n\r\n\x00\r\nQUIT\n\x21\x00\x00\x03abc",
	} {
		h, n, err := proxyproto.Parse([]byte(in))
		if err != nil || !h.Local || n != len(in) || h.Src.IsValid() {
			t.Errorf("Parse(%q) = %+v, %d, %v; want a local header of %d bytes", in, h, n, err, len(in))
		}
	}
}

// TestParseRefuses feeds headers the specification does not allow.
func TestParseRefuses(t *testing.T) {
	v2 := "\r\n\r\n\x00\r\nQUIT\n"
	for _, in := range []string{
		"GET / HTTP/1.1\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 ::1 ::1 1 2\r\n",
		"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r2\r\n",
		"PROXY " + strings.Repeat("A", 200),
		v2 + "\x22\x11\x00\x0c" + strings.Repeat("\x00", 12),  // command 2
		v2 + "\x11\x11\x00\x0c" + strings.Repeat("\x00", 12),  // version 1
		v2 + "\x21\x12\x00\x0c" + strings.Repeat("\x00", 12),  // UDP4
		v2 + "\x21\x31\x00\xd8" + strings.Repeat("\x00", 216), // unix
		v2 + "\x21\x11\x00\x0b" + strings.Repeat("\x00", 11),  // too short
		v2 + "\x21\x21\x00\x0c" + strings.Repeat("\x00", 12),  // too short for TCP6
		v2 + "\x21\x11\xff\xff",                               // over MaxV2Len
		"\r\n\r\nX",
	} {
		if h, n, err := proxyproto.Parse([]byte(in)); !errors.Is(err, proxyproto.ErrInvalid) {
			t.Errorf("Parse(%q) = %+v, %d, %v; want ErrInvalid", in, h, n, err)
		}
		if _, err := proxyproto.Read(strings.NewReader(in)); !errors.Is(err, proxyproto.ErrInvalid) {
			t.Errorf("Read(%q) = %v; want ErrInvalid", in, err)
		}
	}
}

// TestReadShort checks that a header cut short is io.ErrUnexpectedEOF and
// no input is io.EOF.
func TestReadShort(t *testing.T) {
	if _, err := proxyproto.Read(strings.NewReader("PROXY TCP4 1.2")); err != io.ErrUnexpectedEOF {
		t.Errorf("Read(cut v1) = %v", err)
	}
	if _, err := proxyproto.Read(strings.NewReader("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x01")); err != io.ErrUnexpectedEOF {
		t.Errorf("Read(cut v2) = %v", err)
	}
	if _, err := proxyproto.Read(strings.NewReader("")); err != io.EOF {
		t.Errorf("Read(empty) = %v", err)
	}
}

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, must
// report a length within the input and the bounds, and any header it
// accepts with addresses must be written back by Append to bytes that
// parse to the same header.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 127.0.0.2 127.0.0.1 41234 7001\r\n",
		"PROXY TCP6 ::1 ::1 1 2\r\n",
		"PROXY UNKNOWN\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x02\x7f\x00\x00\x01\xa1\x12\x1b\x59",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24" + strings.Repeat("\x01", 36),
		"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00",
		"GET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, n, err := proxyproto.Parse(in)
		if err != nil {
			if !errors.Is(err, proxyproto.ErrTruncated) && !errors.Is(err, proxyproto.ErrInvalid) {
				t.Fatalf("Parse error %v is neither truncated nor invalid", err)
			}
			return
		}
		if n <= 0 || n > len(in) || n > 16+proxyproto.MaxV2Len {
			t.Fatalf("Parse length %d of %d bytes", n, len(in))
		}
		if h.Version == sdk.ProxyV1 && n > proxyproto.MaxV1Len {
			t.Fatalf("version 1 header of %d bytes", n)
		}
		r := bytes.NewReader(in)
		h2, err := proxyproto.Read(r)
		if err != nil || h2 != h || r.Len() != len(in)-n {
			t.Fatalf("Read = %+v, %v, left %d; Parse = %+v, %d", h2, err, r.Len(), h, n)
		}
		if h.Local {
			return
		}
		b, err := proxyproto.Append(nil, h.Version, h.Src, h.Dst)
		if err != nil {
			t.Fatalf("Append of a parsed header: %v", err)
		}
		h3, _, err := proxyproto.Parse(b)
		if err != nil || h3.Src.Addr().Unmap() != h.Src.Addr().Unmap() || h3.Dst.Port() != h.Dst.Port() {
			t.Fatalf("round trip %+v -> %q -> %+v, %v", h, b, h3, err)
		}
	})
}
