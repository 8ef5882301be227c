package websocket

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

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
		// Whole milliseconds, rounded up, at least 1, at most 10 digits.
		want := (d + time.Millisecond - 1) / time.Millisecond * time.Millisecond
		want = min(max(want, time.Millisecond), 9_999_999_999*time.Millisecond)
		if m.threshold != want {
			t.Errorf("thresholdMsg(%v) read back as %v, want %v", d, m.threshold, want)
		}
	}
	if got := string(thresholdMsg(3 * time.Second)); got != "T3000;" {
		t.Errorf("thresholdMsg(3s) = %q, want T3000;", got)
	}
	for _, bad := range []string{"T;", "T0;", "Tx;", "T12345678901;", "T12"} {
		if _, err := readMsg(bytes.NewReader([]byte(bad))); err == nil {
			t.Errorf("readMsg(%q) accepted a malformed message", bad)
		}
	}
	m, err := readMsg(bytes.NewReader([]byte("P\x00\x00\x00\x00\x00\x00\x00\x07")))
	if err != nil || m.kind != 'P' || m.id != 7 {
		t.Errorf("readMsg(P 7) = %+v, %v", m, err)
	}
	if m, err := readMsg(bytes.NewReader([]byte("B"))); err != nil || m.kind != 'B' {
		t.Errorf("readMsg(B) = %+v, %v", m, err)
	}
}

func TestBeatInterval(t *testing.T) {
	for _, tt := range []struct{ told, own, want time.Duration }{
		{0, 0, 5 * time.Second}, // not told: the sdk default, as before
		{0, time.Second, time.Second},
		{5 * time.Second, 0, 1250 * time.Millisecond},
		{time.Second, 0, 250 * time.Millisecond},
		{200 * time.Second, 0, 50 * time.Second},
		{200 * time.Second, 5 * time.Second, 5 * time.Second},
		{time.Millisecond, 0, 10 * time.Millisecond},
	} {
		if got := beatInterval(tt.told, tt.own); got != tt.want {
			t.Errorf("beatInterval(%v, %v) = %v, want %v", tt.told, tt.own, got, tt.want)
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
	f.Add(originMsg(7, sdk.Origin{Client: netip.MustParseAddrPort("127.0.0.2:1"), Local: netip.MustParseAddrPort("[::1]:2"), Proxy: sdk.ProxyV1}))
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
			if again := originMsg(m.id, m.origin); !bytes.Equal(again, in[:len(again)]) {
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
