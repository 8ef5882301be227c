// Package proxyproto writes and reads PROXY protocol headers (HAProxy's
// "PROXY protocol" specification, versions 1 and 2) for TCP over IPv4 and
// IPv6: the header an agent writes to its local service so that the
// service sees the public client's address (see [sdk.Origin]).
//
// [Append] writes a header. [Parse] and [Read] read one strictly and
// within fixed bounds (a version 1 line of at most 107 bytes, a version 2
// header of at most 16+[MaxV2Len] bytes); they exist for tests and for
// services written in Go, and refuse what the specification does not
// allow rather than guess.
//
// This package is part of the stable contract of the sdk (see "Stability"
// in package sdk): its exported names change only in a
// backwards-compatible way, and make api-check enforces it.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/iofog/iofog-connector/sdk"
)

// The version 2 signature, which no version 1 header (and no HTTP request)
// starts with.
const sigV2 = "\r\n\r\n\x00\r\nQUIT\n"

// Limits of a header.
const (
	// MaxV1Len is the longest version 1 header, CRLF included.
	MaxV1Len = 107
	// MaxV2Len bounds the length field of a version 2 header that [Parse]
	// accepts: the addresses and any TLVs after them. The specification
	// allows 65535; a header that big is an attack on a Go service, not a
	// proxy's.
	MaxV2Len = 2048
)

// Version 2 command and families.
const (
	v2Local  = 0x20
	v2Proxy  = 0x21
	famUnset = 0x00
	famTCP4  = 0x11
	famTCP6  = 0x21
	lenTCP4  = 12
	lenTCP6  = 36
)

var (
	// ErrTruncated is returned by [Parse] when b is a proper prefix of a
	// header that may be valid: more bytes are needed.
	ErrTruncated = errors.New("proxyproto: truncated header")
	// ErrInvalid is wrapped by every error about a header that is not
	// valid.
	ErrInvalid = errors.New("proxyproto: invalid header")
)

// Header is a parsed header.
type Header struct {
	// Version is [sdk.ProxyV1] or [sdk.ProxyV2].
	Version sdk.ProxyVersion
	// Local is true for a header that carries no addresses: version 1
	// "PROXY UNKNOWN" and the version 2 LOCAL command (or the PROXY
	// command with the unspecified family). Src and Dst are then zero.
	Local bool
	// Src is the client's address, Dst the address it connected to.
	Src, Dst netip.AddrPort
}

// Append appends to b the header of version v carrying src (the client)
// and dst (the address it connected to). When one address is IPv4 and the
// other IPv6, the IPv4 one is written IPv4-mapped (TCP6), since a header
// has one family. It fails, wrapping [ErrInvalid], for an address that is
// not valid or has a zone and for a version other than 1 or 2.
func Append(b []byte, v sdk.ProxyVersion, src, dst netip.AddrPort) ([]byte, error) {
	if !src.IsValid() || !dst.IsValid() || src.Addr().Zone() != "" || dst.Addr().Zone() != "" {
		return b, fmt.Errorf("%w: addresses %v and %v", ErrInvalid, src, dst)
	}
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	v4 := s.Is4() && d.Is4()
	if !v4 {
		s, d = as16(s), as16(d)
	}
	switch v {
	case sdk.ProxyV1:
		fam := "TCP6"
		if v4 {
			fam = "TCP4"
		}
		b = append(b, "PROXY "...)
		b = append(b, fam...)
		b = append(b, ' ')
		b = s.AppendTo(b)
		b = append(b, ' ')
		b = d.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, '\r', '\n'), nil
	case sdk.ProxyV2:
		b = append(b, sigV2...)
		b = append(b, v2Proxy)
		if v4 {
			b = append(b, famTCP4)
			b = binary.BigEndian.AppendUint16(b, lenTCP4)
		} else {
			b = append(b, famTCP6)
			b = binary.BigEndian.AppendUint16(b, lenTCP6)
		}
		b = append(b, s.AsSlice()...)
		b = append(b, d.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, src.Port())
		return binary.BigEndian.AppendUint16(b, dst.Port()), nil
	}
	return b, fmt.Errorf("%w: version %d", ErrInvalid, v)
}

// as16 returns a as an IPv6 address, IPv4-mapped if it is IPv4.
func as16(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

// Parse parses the header at the start of b and returns it with its
// length in bytes. It returns [ErrTruncated] when b is a proper prefix of
// a header that may be valid, and an error wrapping [ErrInvalid] for
// anything else that is not one valid header: another protocol's bytes, a
// version 1 line longer than [MaxV1Len] or with a malformed address or
// port, a version 2 header of another version, command or family (UDP and
// unix sockets are refused), or with a length over [MaxV2Len] or too short
// for its family. It reads nothing past the header.
func Parse(b []byte) (Header, int, error) {
	if len(b) == 0 {
		return Header{}, 0, ErrTruncated
	}
	switch b[0] {
	case 'P':
		return parseV1(b)
	case sigV2[0]:
		return parseV2(b)
	}
	return Header{}, 0, fmt.Errorf("%w: no PROXY protocol signature", ErrInvalid)
}

func parseV1(b []byte) (Header, int, error) {
	const prefix = "PROXY "
	n := min(len(b), len(prefix))
	if string(b[:n]) != prefix[:n] {
		return Header{}, 0, fmt.Errorf("%w: no PROXY protocol signature", ErrInvalid)
	}
	end := bytes.IndexByte(b[:min(len(b), MaxV1Len)], '\n')
	if end < 0 {
		if len(b) >= MaxV1Len {
			return Header{}, 0, fmt.Errorf("%w: version 1 line longer than %d bytes", ErrInvalid, MaxV1Len)
		}
		return Header{}, 0, ErrTruncated
	}
	if end == 0 || b[end-1] != '\r' {
		return Header{}, 0, fmt.Errorf("%w: version 1 line does not end in CRLF", ErrInvalid)
	}
	line := string(b[:end-1])
	if bytes.IndexByte([]byte(line), '\r') >= 0 {
		return Header{}, 0, fmt.Errorf("%w: CR inside the version 1 line", ErrInvalid)
	}
	h := Header{Version: sdk.ProxyV1}
	f := bytes.Split([]byte(line), []byte{' '})
	if len(f) >= 2 && string(f[1]) == "UNKNOWN" {
		// The rest of the line is to be ignored, whatever it holds.
		h.Local = true
		return h, end + 1, nil
	}
	if len(f) != 6 {
		return Header{}, 0, fmt.Errorf("%w: version 1 line has %d fields, want 6", ErrInvalid, len(f))
	}
	var want6 bool
	switch string(f[1]) {
	case "TCP4":
	case "TCP6":
		want6 = true
	default:
		return Header{}, 0, fmt.Errorf("%w: version 1 protocol %q", ErrInvalid, f[1])
	}
	addr := func(s []byte) (netip.Addr, error) {
		a, err := netip.ParseAddr(string(s))
		if err != nil || a.Zone() != "" || a.Is6() != want6 {
			return netip.Addr{}, fmt.Errorf("%w: version 1 address %q for %s", ErrInvalid, s, f[1])
		}
		return a, nil
	}
	src, err := addr(f[2])
	if err != nil {
		return Header{}, 0, err
	}
	dst, err := addr(f[3])
	if err != nil {
		return Header{}, 0, err
	}
	sp, err := port(f[4])
	if err != nil {
		return Header{}, 0, err
	}
	dp, err := port(f[5])
	if err != nil {
		return Header{}, 0, err
	}
	h.Src, h.Dst = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, end + 1, nil
}

// port parses a version 1 port: 0 to 65535 in decimal, no sign and no
// leading zero.
func port(s []byte) (uint16, error) {
	if len(s) == 0 || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: version 1 port %q", ErrInvalid, s)
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: version 1 port %q", ErrInvalid, s)
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("%w: version 1 port %q", ErrInvalid, s)
	}
	return uint16(n), nil
}

func parseV2(b []byte) (Header, int, error) {
	n := min(len(b), len(sigV2))
	if string(b[:n]) != sigV2[:n] {
		return Header{}, 0, fmt.Errorf("%w: no PROXY protocol signature", ErrInvalid)
	}
	if len(b) < 16 {
		return Header{}, 0, ErrTruncated
	}
	cmd, fam := b[12], b[13]
	size := int(binary.BigEndian.Uint16(b[14:16]))
	if cmd != v2Local && cmd != v2Proxy {
		return Header{}, 0, fmt.Errorf("%w: version 2 version/command byte %#x", ErrInvalid, cmd)
	}
	if size > MaxV2Len {
		return Header{}, 0, fmt.Errorf("%w: version 2 length %d is over %d", ErrInvalid, size, MaxV2Len)
	}
	need := 0
	switch fam {
	case famUnset:
	case famTCP4:
		need = lenTCP4
	case famTCP6:
		need = lenTCP6
	default:
		if cmd == v2Proxy {
			return Header{}, 0, fmt.Errorf("%w: version 2 family %#x (only TCP over IPv4 and IPv6)", ErrInvalid, fam)
		}
	}
	if size < need {
		return Header{}, 0, fmt.Errorf("%w: version 2 length %d is too short for family %#x", ErrInvalid, size, fam)
	}
	if len(b) < 16+size {
		return Header{}, 0, ErrTruncated
	}
	h := Header{Version: sdk.ProxyV2}
	body := b[16 : 16+size]
	if cmd == v2Local || fam == famUnset {
		// LOCAL: the receiver uses the connection's own addresses; the
		// body is to be skipped.
		h.Local = true
		return h, 16 + size, nil
	}
	al := 4
	if fam == famTCP6 {
		al = 16
	}
	src, _ := netip.AddrFromSlice(body[:al])
	dst, _ := netip.AddrFromSlice(body[al : 2*al])
	sp := binary.BigEndian.Uint16(body[2*al:])
	dp := binary.BigEndian.Uint16(body[2*al+2:])
	h.Src, h.Dst = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, 16 + size, nil
}

// Read reads one header from r with [Parse]'s rules and returns it. It
// reads exactly the header's bytes and nothing after it (a version 1
// header one byte at a time), so the connection's data that follows stays
// in r. A header that is not valid returns an error wrapping [ErrInvalid];
// r's errors are returned as they are (io.ErrUnexpectedEOF for a header cut
// short).
func Read(r io.Reader) (Header, error) {
	buf := make([]byte, 0, 16)
	var one [1]byte
	for {
		h, _, err := Parse(buf)
		if !errors.Is(err, ErrTruncated) {
			return h, err
		}
		// A version 2 header says its length after 16 bytes: read the
		// rest at once.
		want := 1
		if len(buf) >= 16 && buf[0] == sigV2[0] {
			want = 16 + int(binary.BigEndian.Uint16(buf[14:16])) - len(buf)
		}
		if want == 1 {
			if _, err := io.ReadFull(r, one[:]); err != nil {
				return Header{}, unexpected(err, len(buf))
			}
			buf = append(buf, one[0])
			continue
		}
		rest := make([]byte, want)
		if _, err := io.ReadFull(r, rest); err != nil {
			return Header{}, unexpected(err, len(buf))
		}
		buf = append(buf, rest...)
	}
}

// unexpected turns an EOF after some bytes into io.ErrUnexpectedEOF.
func unexpected(err error, read int) error {
	if err == io.EOF && read > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}
