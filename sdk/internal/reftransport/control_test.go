package reftransport

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// FuzzReadMsg: the agent's control message parser never panics, reads at
// most 12 bytes per message (10+sdk.MaxOriginLen for a 'Q', whose origin
// must be valid and round trip), and accepts a 'T' only with a positive
// threshold that round trips; thresholdMsg never writes a 'P'.
func FuzzReadMsg(f *testing.F) {
	for _, seed := range []string{"B", "T3000;", "T1;", "T0;", "T;", "T12345678901;", "Tx", "P\x00\x00\x00\x00\x00\x00\x00\x01", "P\x00", ""} {
		f.Add([]byte(seed))
	}
	f.Add(originMsg(7, sdk.Origin{Client: netip.MustParseAddrPort("127.0.0.2:1"), Local: netip.MustParseAddrPort("[::1]:2"), Proxy: sdk.ProxyV2}))
	f.Add([]byte("Q\x00\x00\x00\x00\x00\x00\x00\x01\x05\x01\x01\x04"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		m, err := readMsg(r)
		if read := len(in) - r.Len(); read > 12 && (len(in) == 0 || in[0] != 'Q' || read > 10+sdk.MaxOriginLen) {
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
			b := thresholdMsg(m.threshold)
			if bytes.IndexByte(b, 'P') >= 0 {
				t.Fatalf("thresholdMsg(%v) = %q holds a 'P'", m.threshold, b)
			}
			back, err := readMsg(bytes.NewReader(b))
			if m.threshold <= 0 || err != nil || back.threshold != m.threshold {
				t.Fatalf("threshold %v does not round trip: %v, %v", m.threshold, back, err)
			}
		}
	})
}

func TestThresholdMessage(t *testing.T) {
	if got := string(thresholdMsg(3 * time.Second)); got != "T3000;" {
		t.Errorf("thresholdMsg(3s) = %q, want T3000;", got)
	}
	if got := string(thresholdMsg(time.Microsecond)); got != "T1;" {
		t.Errorf("thresholdMsg(1µs) = %q, want T1; (never T0;)", got)
	}
}
