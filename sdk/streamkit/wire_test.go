package streamkit

import (
	"bytes"
	"errors"
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

// TestWireBytes pins the wire format byte for byte: agents and
// connectors of earlier releases speak it.
func TestWireBytes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"control header", appendHeader(nil, kindControl, "pw"), []byte("REF1C\x02pw")},
		{"origins control header", appendHeader(nil, kindControlOrigins, "pw"), []byte("REF1c\x02pw")},
		{"open header", appendHeader(nil, kindOpen, "pw", 7), []byte("REF1O\x02pw\x00\x00\x00\x00\x00\x00\x00\x07")},
		{"data header", appendHeader(nil, kindData, "", 7, 9), []byte("REF1D\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x09")},
		{"request", requestMsg(7, testOrigin, false), []byte("P\x00\x00\x00\x00\x00\x00\x00\x07")},
		{"request with origin", requestMsg(7, testOrigin, true)[:10], []byte("Q\x00\x00\x00\x00\x00\x00\x00\x07\x1c")},
		{"threshold", thresholdMsg(3 * time.Second), []byte("T3000;")},
		{"threshold under a millisecond", thresholdMsg(time.Microsecond), []byte("T1;")},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestThresholdMessage: the message round trips, and none of its bytes is
// 'P', the only byte an agent of an earlier release acts on.
func TestThresholdMessage(t *testing.T) {
	for _, d := range []time.Duration{time.Microsecond, time.Second, 3 * time.Second, 200 * time.Second, 1 << 62} {
		b := thresholdMsg(d)
		if bytes.IndexByte(b, 'P') >= 0 {
			t.Errorf("thresholdMsg(%v) = %q holds a 'P'", d, b)
		}
		m, err := readMsg(bytes.NewReader(b))
		if err != nil || m.kind != 'T' {
			t.Fatalf("readMsg(%q) = %+v, %v", b, m, err)
		}
		want := (d + time.Millisecond - 1) / time.Millisecond * time.Millisecond
		want = min(max(want, time.Millisecond), 9_999_999_999*time.Millisecond)
		if m.threshold != want {
			t.Errorf("thresholdMsg(%v) read back as %v, want %v", d, m.threshold, want)
		}
	}
	for _, bad := range []string{"T;", "T0;", "Tx;", "T12345678901;", "T12"} {
		if _, err := readMsg(bytes.NewReader([]byte(bad))); err == nil {
			t.Errorf("readMsg(%q) accepted a malformed message", bad)
		}
	}
	if m, err := readMsg(bytes.NewReader([]byte("B"))); err != nil || m.kind != 'B' {
		t.Errorf("readMsg(B) = %+v, %v", m, err)
	}
}

// TestOriginMessage: 'Q' round trips and malformed ones are refused.
func TestOriginMessage(t *testing.T) {
	b := requestMsg(9, testOrigin, true)
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

func TestBeatInterval(t *testing.T) {
	for _, tt := range []struct{ told, own, want time.Duration }{
		{0, 0, 5 * time.Second}, // not told: the sdk default
		{0, time.Second, time.Second},
		{5 * time.Second, 0, 1250 * time.Millisecond},
		{time.Second, 0, 250 * time.Millisecond},
		{200 * time.Second, 0, 50 * time.Second},
		{200 * time.Second, 5 * time.Second, 5 * time.Second},
		{time.Millisecond, 0, 10 * time.Millisecond},
	} {
		if got := BeatInterval(tt.told, tt.own); got != tt.want {
			t.Errorf("BeatInterval(%v, %v) = %v, want %v", tt.told, tt.own, got, tt.want)
		}
	}
}

// FuzzReadMsg: the agent's control message parser never panics, reads
// at most 12 bytes per message (10+sdk.MaxOriginLen for a 'Q', whose
// origin must be valid and round trip), and accepts a 'T' only with a
// positive threshold that round trips.
func FuzzReadMsg(f *testing.F) {
	for _, seed := range []string{"B", "T3000;", "T1;", "T0;", "T;", "T12345678901;", "Tx", "P\x00\x00\x00\x00\x00\x00\x00\x01", "P\x00", ""} {
		f.Add([]byte(seed))
	}
	f.Add(requestMsg(7, testOrigin, true))
	f.Add([]byte("Q\x00\x00\x00\x00\x00\x00\x00\x01\x05\x01\x01\x04"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		m, err := readMsg(r)
		if read := len(in) - r.Len(); read > 12 && (in[0] != 'Q' || read > 10+sdk.MaxOriginLen) {
			t.Fatalf("readMsg read %d bytes", read)
		}
		if err != nil {
			if !errors.Is(err, errBadMessage) && !errors.Is(err, errBadOrigin) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("readMsg(%q): unexpected error %v", in, err)
			}
			return
		}
		if m.kind == 'Q' {
			if err := m.origin.Validate(); err != nil {
				t.Fatalf("accepted an invalid origin %+v", m.origin)
			}
			if again := requestMsg(m.id, m.origin, true); !bytes.Equal(again, in[:len(again)]) {
				t.Fatalf("origin message %x re-encoded as %x", in, again)
			}
		}
		if m.kind == 'T' {
			if m.threshold <= 0 {
				t.Fatalf("readMsg(%q) accepted threshold %v", in, m.threshold)
			}
			back, err := readMsg(bytes.NewReader(thresholdMsg(m.threshold)))
			if err != nil || back.threshold != m.threshold {
				t.Fatalf("threshold %v does not round trip: %v, %v", m.threshold, back, err)
			}
		}
	})
}

// FuzzReadHeader: the connector's parser of an agent's first bytes never
// panics, reads at most 6+255+16 bytes, and what it accepts round trips.
func FuzzReadHeader(f *testing.F) {
	f.Add(appendHeader(nil, kindControl, "pw"))
	f.Add(appendHeader(nil, kindData, "pw", 1, 2))
	f.Add(appendHeader(nil, kindOpen, "pw", 1))
	f.Add([]byte("REF1D\x02pw\x00"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := readHeader(r)
		if read := len(in) - r.Len(); read > 6+255+16 {
			t.Fatalf("readHeader read %d bytes", read)
		}
		if err != nil {
			return
		}
		ids := []uint64{h.session, h.stream}[:idCount(h.kind)]
		if again := appendHeader(nil, h.kind, string(h.pass), ids...); !bytes.Equal(again, in[:len(again)]) {
			t.Fatalf("header %q re-encoded as %q", in, again)
		}
	})
}
