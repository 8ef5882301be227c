package yamux

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	c, s := transporttest.TCPPairs(t)(t)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// tlsConfigs are transporttest's, the client's naming the server.
func tlsConfigs(t *testing.T) (srv, cli *tls.Config) {
	srv, cli = transporttest.TLSConfigs(t)
	cli = cli.Clone()
	cli.ServerName = "127.0.0.1"
	return srv, cli
}

// frameHdr is a yamux frame header.
func frameHdr(typ byte, flags uint16, id, length uint32) []byte {
	h := make([]byte, hdrSize)
	h[0], h[1] = frameVersion, typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// readNow reads what is there within a short wait: nil when nothing is.
func readNow(t *testing.T, c net.Conn, wait time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 256<<10)
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	n, err := c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n]
}

func TestBodyFollows(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"data with a body", frameHdr(0, 0, 3, 100), true},
		{"data, SYN with a body", frameHdr(0, 1, 3, 1), true},
		{"data with no body (FIN)", frameHdr(0, 4, 3, 0), false},
		{"window update", frameHdr(1, 0, 3, 1<<20), false},
		{"ping", frameHdr(2, 1, 0, 7), false},
		{"go-away", frameHdr(3, 0, 0, 0), false},
		{"other version", append([]byte{1}, frameHdr(0, 0, 3, 100)[1:]...), false},
		{"header and body in one write", append(frameHdr(0, 0, 3, 1), 'x'), false},
		{"short", frameHdr(0, 0, 3, 100)[:11], false},
	} {
		if got := bodyFollows(tc.b); got != tc.want {
			t.Errorf("%s: bodyFollows = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A data frame's header goes out with its body, in one write; a header
// with no body goes out at once.
func TestFrameConnJoinsHeaderAndBody(t *testing.T) {
	c, s := tcpPair(t)
	f := coalesce(c, c)
	if _, ok := f.(*frameConn); !ok {
		t.Fatalf("coalesce of a TCP connection is %T, want *frameConn", f)
	}
	body := bytes.Repeat([]byte("b"), 5000)
	hdr := frameHdr(0, 0, 3, uint32(len(body)))
	if n, err := f.Write(hdr); n != hdrSize || err != nil {
		t.Fatalf("header write = %d, %v", n, err)
	}
	if got := readNow(t, s, 100*time.Millisecond); got != nil {
		t.Fatalf("the peer read %d bytes of a header held for its body", len(got))
	}
	if n, err := f.Write(body); n != len(body) || err != nil {
		t.Fatalf("body write = %d, %v; want %d, nil", n, err, len(body))
	}
	got := make([]byte, hdrSize+len(body))
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(hdr, body...)) {
		t.Fatal("the peer read other bytes than the header and body")
	}

	// A window update is not held: the peer reads it with nothing after it.
	wu := frameHdr(1, 0, 3, 1<<20)
	if _, err := f.Write(wu); err != nil {
		t.Fatal(err)
	}
	if got := readNow(t, s, 5*time.Second); !bytes.Equal(got, wu) {
		t.Fatalf("the peer read %x, want the window update %x", got, wu)
	}
}

// countConn counts the writes that reach a connection.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// Under TLS a frame's records (the header's and the body's) reach the TCP
// connection in one write, within corkMax, and no buffer stays held.
func TestCorkJoinsRecords(t *testing.T) {
	var counted *countConn
	f, ts, cork := corkedTLS(t, func(c net.Conn) net.Conn { counted = &countConn{Conn: c}; return counted })
	if _, ok := f.(*frameConn); !ok {
		t.Fatalf("coalesce under TLS is %T, want *frameConn", f)
	}
	got := make(chan []byte, 1)
	for _, size := range []int{1, 40000, 64 << 10, 3 * corkMax} {
		body := bytes.Repeat([]byte{byte(size)}, size)
		hdr := frameHdr(0, 0, 5, uint32(size))
		readAsync(t, ts, hdrSize+size, got)
		before := counted.writes.Load()
		if n, err := f.Write(hdr); n != hdrSize || err != nil {
			t.Fatalf("header write = %d, %v", n, err)
		}
		if counted.writes.Load() != before {
			t.Fatalf("%d bytes: the header was written before its body", size)
		}
		if n, err := f.Write(body); n != size || err != nil {
			t.Fatalf("body write = %d, %v; want %d, nil", n, err, size)
		}
		writes := counted.writes.Load() - before
		if size <= 64<<10 && writes != 1 {
			t.Errorf("a frame of %d bytes took %d writes, want 1", size, writes)
		}
		if size > corkMax && writes < 2 {
			t.Errorf("a frame of %d bytes took %d write, want it split at corkMax (%d)", size, writes, corkMax)
		}
		if b := <-got; !bytes.Equal(b, append(hdr, body...)) {
			t.Fatalf("%d bytes: the peer read other bytes than the header and body", size)
		}
		cork.mu.Lock()
		held := cork.buf != nil || cork.on
		cork.mu.Unlock()
		if held {
			t.Fatal("the cork holds a buffer after the frame")
		}
	}

	// A window update goes through at once.
	wu := frameHdr(1, 0, 5, 1<<20)
	if _, err := f.Write(wu); err != nil {
		t.Fatal(err)
	}
	if got := readNow(t, ts, 5*time.Second); !bytes.Equal(got, wu) {
		t.Fatalf("the peer read %x, want the window update %x", got, wu)
	}
}

// A frame written to a broken connection fails; nothing is lost silently.
func TestFrameConnWriteError(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		c, s := tcpPair(t)
		var f, closer net.Conn
		if useTLS {
			srvCfg, cliCfg := tlsConfigs(t)
			cork := newCork(c)
			tc := tls.Client(cork, cliCfg)
			ts := tls.Server(s, srvCfg)
			go ts.Handshake()
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			f, closer = coalesce(tc, cork), c
		} else {
			f, closer = coalesce(c, c), c
		}
		closer.Close()
		f.Write(frameHdr(0, 0, 3, 10))
		if n, err := f.Write(make([]byte, 10)); err == nil {
			t.Errorf("tls %v: a frame on a closed connection: %d, nil; want an error", useTLS, n)
		}
	}
}

// Joining a frame allocates nothing: it runs for every frame.
func TestFrameConnAllocs(t *testing.T) {
	c, s := tcpPair(t)
	go drain(s)
	f := coalesce(c, c)
	body := make([]byte, 4096)
	hdr := frameHdr(0, 0, 3, uint32(len(body)))
	allocs := testing.AllocsPerRun(100, func() {
		f.Write(hdr)
		if _, err := f.Write(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a frame allocates %v times, want 0", allocs)
	}
}

// drain reads r to its end into one buffer of its own. The allocation
// tests read their peer with it, not with io.Copy(io.Discard, ...):
// AllocsPerRun counts every goroutine's allocations, and io.Discard takes
// its buffers from a sync.Pool, which under the race detector drops items
// at random, so the reader allocated now and then.
func drain(r io.Reader) {
	buf := make([]byte, 64<<10)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// corkedTLS returns the frame writer of a yamux session under TLS (the
// TLS client over a cork over under(one end of a loopback TCP connection))
// and the TLS server at the other end, both past their handshakes, and
// the cork.
func corkedTLS(t *testing.T, under func(net.Conn) net.Conn) (net.Conn, *tls.Conn, *corkConn) {
	t.Helper()
	srvCfg, cliCfg := tlsConfigs(t)
	c, s := tcpPair(t)
	cork := newCork(under(c))
	tc := tls.Client(cork, cliCfg)
	ts := tls.Server(s, srvCfg)
	errc := make(chan error, 1)
	go func() { errc <- ts.Handshake() }()
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return coalesce(tc, cork), ts, cork
}

// readAsync reads n bytes from r on a goroutine, within 5 s, and sends
// them to got.
func readAsync(t *testing.T, r *tls.Conn, n int, got chan<- []byte) {
	go func() {
		b := make([]byte, n)
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(r, b); err != nil {
			t.Error(err)
		}
		got <- b
	}()
}
