package quic_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/quic"
)

// pattern returns n bytes of a stream whose byte at offset i is i mod 251.
func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + i) % 251)
	}
	return b
}

// readAll reads c to its end in the background, bounded by a watchdog.
func readAll(t *testing.T, c io.Reader) <-chan []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		ch <- b
	}()
	return ch
}

func wait(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(30 * time.Second):
		t.Fatal("watchdog: the peer did not read to the end in 30 s")
		return nil
	}
}

// TestWriteDeadlineKeepsBytes: writes that time out because the peer reads
// nothing lose no bytes and duplicate none: the peer reads exactly the
// bytes Write reported written, in order, once writing resumes under a
// later deadline. (It guards any stream that buffers or hands on writes
// behind quic-go's back.)
func TestWriteDeadlineKeepsBytes(t *testing.T) {
	c, a := transporttest.Pairs(t, newTransport(t, quic.Config{}), "udp")(t)
	defer c.Close()
	defer a.Close()

	const chunk = 24 << 10
	off := 0
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	timedOut := false
	for range 4096 { // 96 MiB at most; quic-go's window is far smaller
		n, err := c.Write(pattern(off, chunk))
		off += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write with the peer not reading: err = %v, want os.ErrDeadlineExceeded", err)
			}
			timedOut = true
			break
		}
	}
	if !timedOut {
		t.Fatal("Write never timed out with the peer not reading")
	}
	got := readAll(t, a)
	c.SetWriteDeadline(time.Time{})
	for range 8 {
		n, err := c.Write(pattern(off, chunk))
		off += n
		if err != nil {
			t.Fatalf("Write after the deadline was lifted: %v", err)
		}
	}
	if err := c.(sdk.CloseWriter).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	b := wait(t, got)
	if len(b) != off {
		t.Fatalf("peer read %d bytes, Write reported %d", len(b), off)
	}
	if !bytes.Equal(b, pattern(0, off)) {
		t.Fatal("peer read the bytes Write reported, but not in order or not the same")
	}
}

// TestCloseDeliversWritten: bytes Write accepted reach the peer when Close
// follows at once, then the peer reads io.EOF; Write after Close fails.
func TestCloseDeliversWritten(t *testing.T) {
	c, a := transporttest.Pairs(t, newTransport(t, quic.Config{}), "udp")(t)
	defer a.Close()
	got := readAll(t, a)
	want := pattern(0, 200<<10)
	for i := 0; i < len(want); i += 40 << 10 {
		if _, err := c.Write(want[i:min(i+40<<10, len(want))]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Write(want[:1]); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if b := wait(t, got); !bytes.Equal(b, want) {
		t.Fatalf("peer read %d bytes, want the %d written before Close", len(b), len(want))
	}
}
