package pipe

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// waitConn is a stream source with WaitRead, fed chunk by chunk; it counts
// the Reads that found nothing to read (which a copy that waits first
// never makes) and the WaitReads.
type waitConn struct {
	net.Conn // only for the methods Copy does not call
	chunks   chan []byte
	failWait error
	pending  []byte
	eof      bool
	waits    atomic.Int32
	empty    atomic.Int32
}

func (w *waitConn) WaitRead() error {
	w.waits.Add(1)
	if w.failWait != nil {
		return w.failWait
	}
	if len(w.pending) == 0 && !w.eof {
		c, ok := <-w.chunks
		w.pending, w.eof = c, !ok
	}
	return nil
}

func (w *waitConn) Read(p []byte) (int, error) {
	if len(w.pending) == 0 {
		if w.eof {
			return 0, io.EOF
		}
		w.empty.Add(1)
		c, ok := <-w.chunks
		w.pending, w.eof = c, !ok
		if !ok {
			return 0, io.EOF
		}
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// TestWaitCopy: from a source with WaitRead, Copy waits before each read
// (so no read finds the source empty and no buffer is held while idle),
// copies every byte, and ends at EOF without an error.
func TestWaitCopy(t *testing.T) {
	src := &waitConn{chunks: make(chan []byte)}
	dst, sink := net.Pipe()
	defer dst.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(sink)
		got <- b
	}()
	var want []byte
	go func() {
		for i := range 5 {
			c := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
			src.chunks <- c
			time.Sleep(5 * time.Millisecond) // the copy is idle in between
		}
		close(src.chunks)
	}()
	for i := range 5 {
		want = append(want, bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))...)
	}
	n, err := Copy(dst, src)
	dst.Close()
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Copy = %d, %v; want %d, nil", n, err, len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("copied %d bytes, not the %d sent", len(b), len(want))
	}
	if e := src.empty.Load(); e != 0 {
		t.Fatalf("%d reads found the source empty: Copy did not wait first", e)
	}
	if w := src.waits.Load(); w < 6 {
		t.Fatalf("%d WaitRead calls, want one per chunk and one for EOF", w)
	}
}

// TestWaitCopyError: an error from WaitRead ends the copy with it.
func TestWaitCopyError(t *testing.T) {
	boom := errors.New("boom")
	src := &waitConn{chunks: make(chan []byte), failWait: boom}
	dst, sink := net.Pipe()
	defer dst.Close()
	defer sink.Close()
	if _, err := Copy(dst, src); !errors.Is(err, boom) {
		t.Fatalf("Copy = %v, want %v", err, boom)
	}
}
