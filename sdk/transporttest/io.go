package transporttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"
)

// pattern returns n reproducible pseudo-random bytes for seed.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// result is what one goroutine of a check reports.
type result struct {
	n   int
	err error
}

// within runs fn in a goroutine and returns its error, or an error saying
// it did not return within d. On timeout it calls onTimeout (usually a
// Close that unblocks fn) and waits for fn.
func within(d time.Duration, onTimeout func(), fn func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		if onTimeout != nil {
			onTimeout()
		}
		<-ch
		return fmt.Errorf("%w after %v", errTimedOut, d)
	}
}

var errTimedOut = errors.New("did not return")

// writeAll writes b to c in pieces of at most 64 KiB.
func writeAll(c net.Conn, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), 64<<10)
		if _, err := c.Write(b[:n]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// readSum reads exactly n bytes from c and returns their SHA-256.
func readSum(c net.Conn, n int) ([32]byte, error) {
	h := sha256.New()
	got, err := io.CopyN(h, c, int64(n))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if err != nil {
		return sum, fmt.Errorf("read %d of %d bytes: %w", got, n, err)
	}
	return sum, nil
}

// transfer sends out on c while reading len(in) bytes from c and checking
// they equal in (by checksum). Both directions run at once.
func transfer(c net.Conn, out, in []byte) error {
	werr := make(chan error, 1)
	go func() { werr <- writeAll(c, out) }()
	sum, rerr := readSum(c, len(in))
	if rerr != nil {
		c.Close() // unblock the writer
		<-werr
		return rerr
	}
	if err := <-werr; err != nil {
		return err
	}
	if sum != sha256.Sum256(in) {
		return fmt.Errorf("the %d bytes read differ from the bytes sent (checksum mismatch)", len(in))
	}
	return nil
}

// exchange checks that a message crosses c→a and another a→c, then that
// both still work the other way round.
func exchange(c, a net.Conn, tag string) error {
	m1 := []byte("connector to agent: " + tag)
	m2 := []byte("agent to connector: " + tag)
	if err := oneWay(c, a, m1); err != nil {
		return fmt.Errorf("connector→agent: %w", err)
	}
	if err := oneWay(a, c, m2); err != nil {
		return fmt.Errorf("agent→connector: %w", err)
	}
	return nil
}

// oneWay writes msg on w and reads it back on r, failing after 20s.
func oneWay(w, r net.Conn, msg []byte) error {
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	err := within(20*time.Second, func() { r.Close() }, func() error {
		_, err := io.ReadFull(r, got)
		return err
	})
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("read %q, want %q", got, msg)
	}
	return nil
}

// readEnds waits up to d for a read on c to end (EOF or an error). It
// fails if bytes arrive instead or the read goes on blocking.
func readEnds(c net.Conn, d time.Duration) error {
	return within(d, func() { c.Close() }, func() error {
		buf := make([]byte, 1024)
		n, err := c.Read(buf)
		if n > 0 {
			return fmt.Errorf("read %d unexpected bytes %q", n, buf[:n])
		}
		if err == nil {
			return fmt.Errorf("read returned 0, nil")
		}
		return nil
	})
}
