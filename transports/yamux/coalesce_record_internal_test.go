package yamux

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"testing"
)

// recordConn keeps each write that reaches a connection.
type recordConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// since returns the writes after the first n.
func (c *recordConn) since(n int) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes[n:]
}

func (c *recordConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes)
}

// tlsRecords counts the TLS records in b, which must be whole records.
func tlsRecords(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("%d bytes left after %d records: not a whole record header", len(b), n)
		}
		l := 5 + int(binary.BigEndian.Uint16(b[3:5]))
		if l > len(b) {
			t.Fatalf("record %d of %d bytes, only %d written", n, l, len(b))
		}
		b = b[l:]
		n++
	}
	return n
}

// Under TLS a small frame (a ping-pong message, a request) is one TLS
// record in one write, so the peer decrypts one record and wakes up once;
// a frame just over smallBody, and a large one, still reach the
// connection in one write (the cork), their header in a record of its
// own. The peer reads every frame whole, and the cork holds no buffer
// after any of them.
func TestSmallFrameOneRecord(t *testing.T) {
	var rec *recordConn
	f, ts, cork := corkedTLS(t, func(c net.Conn) net.Conn { rec = &recordConn{Conn: c}; return rec })
	for _, tt := range []struct {
		size    int
		records int // in the frame's one write; 0: at least 2
	}{
		{1, 1},
		{64, 1},
		{smallBody, 1},
		{smallBody + 1, 0},
		{40000, 0},
		{1, 1}, // after a large frame, on a connection past TLS's small first records
	} {
		body := bytes.Repeat([]byte{byte(tt.size)}, tt.size)
		hdr := frameHdr(0, 0, 5, uint32(tt.size))
		got := make(chan []byte, 1)
		readAsync(t, ts, hdrSize+tt.size, got)
		before := rec.count()
		if n, err := f.Write(hdr); n != hdrSize || err != nil {
			t.Fatalf("header write = %d, %v", n, err)
		}
		if n, err := f.Write(body); n != tt.size || err != nil {
			t.Fatalf("body write = %d, %v; want %d, nil", n, err, tt.size)
		}
		writes := rec.since(before)
		if len(writes) != 1 {
			t.Fatalf("a frame of %d bytes took %d writes, want 1", tt.size, len(writes))
		}
		records := tlsRecords(t, writes[0])
		switch {
		case tt.records != 0 && records != tt.records:
			t.Errorf("a frame of %d bytes took %d TLS records, want %d", tt.size, records, tt.records)
		case tt.records == 0 && records < 2:
			t.Errorf("a frame of %d bytes took %d TLS record, want the header's and the body's", tt.size, records)
		}
		if b := <-got; !bytes.Equal(b, append(hdr, body...)) {
			t.Fatalf("%d bytes: the peer read other bytes than the header and body", tt.size)
		}
		cork.mu.Lock()
		held := cork.buf != nil || cork.on
		cork.mu.Unlock()
		if held {
			t.Fatal("the cork holds a buffer after the frame")
		}
	}
}

// A small frame under TLS allocates nothing either.
func TestSmallFrameAllocs(t *testing.T) {
	f, ts, _ := corkedTLS(t, func(c net.Conn) net.Conn { return c })
	go drain(ts)
	body := make([]byte, 64)
	hdr := frameHdr(0, 0, 3, uint32(len(body)))
	allocs := testing.AllocsPerRun(100, func() {
		f.Write(hdr)
		if _, err := f.Write(body); err != nil {
			t.Fatal(err)
		}
	})
	// Under -race crypto/tls's record buffer pool drops buffers at random
	// (see raceBuild), which AllocsPerRun rounds to one per frame; the
	// frame path itself must still add nothing.
	want := 0.0
	if raceBuild {
		want = 1
	}
	if allocs > want {
		t.Fatalf("a small frame allocates %v times, want at most %v", allocs, want)
	}
}
