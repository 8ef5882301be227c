package yamux

import (
	"encoding/binary"
	"net"
	"sync"
)

// yamux's session writes every frame to its connection as two writes: the
// 12-byte header, then the body (its send loop, one frame at a time). On
// loopback and fast links each write is a send(2) that the kernel turns
// into its own segment (and, under TLS, its own record), and the peer
// wakes up for the 12 bytes alone. The wrappers here join them without
// delaying anything: a data frame's header announces its body's length,
// so it is held only until that body, which yamux writes right after it;
// every other write (window updates, pings, go-away: headers with no
// body) goes out at once.
//
// Plain TCP: header and body go out in one writev(2), without a copy.
// TLS: a small frame (a body of at most smallBody bytes: pings, requests,
// answers) is copied behind its header into the frameConn's own small
// buffer and written to the TLS connection at once, one record and one
// write, so that the peer decrypts one record rather than two and its
// reader wakes up once. A larger frame's records (the header's and the
// body's) are collected under the TLS connection (corkConn) and sent in
// one write; that copy is bounded by corkMax and its buffer is pooled, so
// an idle session holds none.

const (
	hdrSize = 12 // yamux's frame header
	// smallBody is the largest body written with its header in one TLS
	// record: with its header it fits the first record of a new TLS
	// connection (crypto/tls starts with records of about 1.1 KiB and
	// grows them), so the write is one record and one write from the
	// first frame on, and the copy stays small.
	smallBody = 1024 - hdrSize
	// frameVersion and frameData are the header's version and data type.
	frameVersion = 0
	frameData    = 0
)

// bodyFollows reports whether b is a whole yamux data frame header whose
// body (length > 0) yamux writes next.
func bodyFollows(b []byte) bool {
	return len(b) == hdrSize && b[0] == frameVersion && b[1] == frameData &&
		binary.BigEndian.Uint32(b[8:12]) > 0
}

// frameConn is the connection a yamux session writes to, made for the
// session after the passcode handshake. Only the session's send loop
// writes to it, one frame at a time, so its Write is not safe for
// concurrent use; the rest is the wrapped connection's. A header held
// when the session closes is dropped with the connection.
type frameConn struct {
	net.Conn // what yamux reads from and closes
	hdr      [hdrSize]byte
	held     bool
	// vec and bufs are the header and body for writev, kept here so
	// that a frame allocates nothing.
	vec  [2][]byte
	bufs net.Buffers
	// tcp is the connection itself when it is a plain TCP connection
	// (header and body in one writev); nil under TLS.
	tcp *net.TCPConn
	// cork is the TCP connection under TLS, whose writes it can gather;
	// nil on plain TCP.
	cork *corkConn
	// small is where a small frame is put together under TLS (header
	// and body, one record); nil on plain TCP.
	small *[hdrSize + smallBody]byte
}

// coalesce returns c wrapped for a yamux session. raw is the TCP
// connection under c: c itself for plain TCP, under TLS the corkConn the
// TLS connection was made over (see newCork); anything else is wrapped
// with no effect.
func coalesce(c net.Conn, raw net.Conn) net.Conn {
	f := &frameConn{Conn: c}
	switch r := raw.(type) {
	case *corkConn:
		f.cork = r
		f.small = new([hdrSize + smallBody]byte)
	case *net.TCPConn:
		if r == c {
			f.tcp = r
		}
	}
	if f.tcp == nil && f.cork == nil {
		return c
	}
	return f
}

// Write implements net.Conn.
func (f *frameConn) Write(b []byte) (int, error) {
	if !f.held {
		if bodyFollows(b) {
			copy(f.hdr[:], b)
			f.held = true
			return len(b), nil
		}
		return f.Conn.Write(b)
	}
	f.held = false
	if f.tcp != nil {
		f.vec[0], f.vec[1] = f.hdr[:], b
		f.bufs = f.vec[:]
		n, err := f.bufs.WriteTo(f.tcp)
		f.vec[1] = nil // do not keep the caller's buffer
		return int(max(n-hdrSize, 0)), err
	}
	if len(b) <= smallBody {
		copy(f.small[:], f.hdr[:])
		m := copy(f.small[hdrSize:], b)
		n, err := f.Conn.Write(f.small[:hdrSize+m])
		return max(n-hdrSize, 0), err
	}
	f.cork.hold()
	n, err := f.Conn.Write(f.hdr[:])
	if err == nil {
		n, err = f.Conn.Write(b)
	} else {
		n = 0
	}
	if ferr := f.cork.flush(); err == nil && ferr != nil {
		n, err = 0, ferr
	}
	return n, err
}

// corkConn is the TCP connection under a TLS session's connection: while
// held (from hold to flush), what TLS writes is gathered into one buffer,
// up to corkMax, and sent by flush in one write. Outside a hold, writes
// pass through. Its methods are safe for concurrent use (a TLS close
// alert may be written from another goroutine).
type corkConn struct {
	net.Conn
	mu   sync.Mutex
	on   bool
	buf  *[]byte // pooled; nil outside a hold
	werr error   // a write of the hold that failed
}

// corkMax bounds what a hold gathers: a 64 KiB frame with its header,
// as the TLS records carrying it (each record adds at most 29 bytes to
// 16 KiB of data).
const corkMax = 64<<10 + hdrSize + 8*64

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, corkMax); return &b }}

func newCork(c net.Conn) *corkConn { return &corkConn{Conn: c} }

// Write implements net.Conn.
func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return c.Conn.Write(b)
	}
	if c.werr != nil {
		return 0, c.werr
	}
	if len(*c.buf)+len(b) > corkMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(b) > corkMax {
			n, err := c.Conn.Write(b)
			if err != nil {
				c.werr = err
			}
			return n, err
		}
	}
	*c.buf = append(*c.buf, b...)
	return len(b), nil
}

func (c *corkConn) hold() {
	c.mu.Lock()
	c.on = true
	c.buf = corkBufs.Get().(*[]byte)
	c.mu.Unlock()
}

// flush sends what the hold gathered and ends it.
func (c *corkConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	if c.werr != nil {
		err = c.werr
	}
	c.on, c.werr = false, nil
	*c.buf = (*c.buf)[:0]
	corkBufs.Put(c.buf)
	c.buf = nil
	return err
}

func (c *corkConn) flushLocked() error {
	if len(*c.buf) == 0 || c.werr != nil {
		return c.werr
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	if err != nil {
		c.werr = err
	}
	return err
}
