package yamux

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadCtrl: readCtrl reads at most 5 bytes, returns only known
// messages, and an abort it returns is the one appendAbort writes.
func FuzzReadCtrl(f *testing.F) {
	f.Add([]byte{ctrlGoAway})
	f.Add(appendAbort(nil, 7))
	f.Add([]byte{ctrlAbort, 0, 0})
	f.Add([]byte{9, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		kind, id, err := readCtrl(r)
		if read := len(in) - r.Len(); read > 5 {
			t.Fatalf("read %d bytes, want at most 5", read)
		}
		if err != nil {
			if len(in) > 0 && !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v on %d bytes, want ErrProtocol", err, len(in))
			}
			if len(in) == 0 && err != io.EOF {
				t.Fatalf("error %v on no input, want io.EOF", err)
			}
			return
		}
		switch kind {
		case ctrlGoAway:
		case ctrlAbort:
			if !bytes.Equal(in[:5], appendAbort(nil, id)) {
				t.Fatalf("abort of stream %d read from % x", id, in[:5])
			}
		default:
			t.Fatalf("unknown kind %d returned without error", kind)
		}
	})
}
