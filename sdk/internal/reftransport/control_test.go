package reftransport

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzReadMsg: the agent's control message parser never panics, reads at
// most 12 bytes per message, and accepts a 'T' only with a positive
// threshold that round trips; thresholdMsg never writes a 'P'.
func FuzzReadMsg(f *testing.F) {
	for _, seed := range []string{"B", "T3000;", "T1;", "T0;", "T;", "T12345678901;", "Tx", "P\x00\x00\x00\x00\x00\x00\x00\x01", "P\x00", ""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		m, err := readMsg(r)
		if read := len(in) - r.Len(); read > 12 {
			t.Fatalf("readMsg read %d bytes", read)
		}
		if err != nil {
			if !errors.Is(err, errBadMessage) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("readMsg(%q): unexpected error %v", in, err)
			}
			return
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
