// Package pipe joins two streams and copies bytes between them in both
// directions, carrying half-close across.
//
// Between two TCP (or unix) sockets it moves bulk data with the kernel's
// zero-copy splice(2), and small messages (a read that does not fill its
// 32 KiB buffer) with a plain read and write, which cost less than a
// splice into a pipe and out again: request/response traffic keeps the
// read/write path, and a direction switches to splice once a read fills
// the buffer and back after two splices in a row under 4 KiB. Unlike io.Copy's splice, it takes a kernel pipe only
// while bytes are in flight and waits for data without one, so thousands of
// idle relayed connections pin no pipes and no buffers: an idle direction
// costs a parked goroutine and nothing else. When the source is a socket but
// the destination is not (TLS, a multiplexed stream), it likewise waits for
// readability before it takes a pooled buffer, and from a crypto/tls
// connection it waits for a record before it takes one.
//
// This package is a kit, not part of the stable contract (see "Stability"
// in package sdk): transports and tools may use it, and any release may
// change its API; make api-check reports such changes for the release
// notes.
package pipe

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Result is what [Join] moved.
type Result struct {
	// AToB is the number of bytes copied from a to b.
	AToB int64
	// BToA is the number of bytes copied from b to a.
	BToA int64
}

// Join copies a→b and b→a until both directions have ended, then closes
// both streams. When one direction reaches EOF, Join half-closes the
// destination ([sdk.CloseWriter]) so the FIN crosses the relay, and keeps
// the other direction going; a destination that cannot half-close ends the
// relay. A read or write error in either direction, or ctx being done,
// closes both streams at once. It returns the byte counts and the first
// error that was not io.EOF or a close it caused itself.
//
// Join blocks until both copies have returned. It owns a and b.
func Join(ctx context.Context, a, b net.Conn) (Result, error) {
	return JoinWith(ctx, a, b, Options{})
}

// JoinWith is [Join] with options. With Options.IdleTimeout set, a relay on
// which no byte moves either way for that long is closed (both streams)
// and JoinWith returns [ErrIdleTimeout]; the timeout costs one timer per
// relay and a clock read plus an atomic store per transfer.
func JoinWith(ctx context.Context, a, b net.Conn, opts Options) (Result, error) {
	var (
		res    Result
		closed atomic.Bool
		errAB  error
		done   = make(chan struct{})
	)
	// closeBoth closes both streams once and reports whether they were
	// already closed, so that errors it causes are not reported as faults.
	closeBoth := func() (already bool) {
		if closed.Swap(true) {
			return true
		}
		a.Close()
		b.Close()
		return false
	}
	stop := context.AfterFunc(ctx, func() { closeBoth() })
	defer stop()
	var act *activity
	var timer *idleTimer
	if opts.IdleTimeout > 0 {
		act = newActivity()
		timer = act.watch(opts.IdleTimeout, func() { closeBoth() })
	}

	go func() {
		defer close(done)
		res.AToB, errAB = copyHalf(b, a, closeBoth, newMeter(act, opts.AToB))
	}()
	var errBA error
	res.BToA, errBA = copyHalf(a, b, closeBoth, newMeter(act, opts.BToA))
	<-done
	if timer != nil {
		timer.stop()
	}
	closeBoth()
	switch {
	case ctx.Err() != nil:
		return res, nil
	case timer != nil && timer.expired.Load():
		return res, ErrIdleTimeout
	}
	return res, errors.Join(quiet(errAB), quiet(errBA))
}

// copyHalf copies src to dst, then half-closes dst, or closes both on
// error. An error caused by the other direction closing both is dropped.
func copyHalf(dst, src net.Conn, closeBoth func() bool, m *meter) (int64, error) {
	n, err := copyConn(dst, src, m)
	if err != nil {
		if closeBoth() {
			err = nil
		}
		return n, err
	}
	if cw, ok := dst.(sdk.CloseWriter); !ok || cw.CloseWrite() != nil {
		closeBoth()
	}
	return n, nil
}

// Copy copies from src to dst until EOF on src or an error, like io.Copy,
// and returns the bytes copied. It uses splice(2) between sockets, and
// waits for a socket source to be readable before it takes a buffer.
func Copy(dst, src net.Conn) (int64, error) {
	return copyConn(dst, src, nil)
}

// copyConn is [Copy] recording each transfer in m, which may be nil.
func copyConn(dst, src net.Conn, m *meter) (int64, error) {
	if tc, ok := src.(*tls.Conn); ok {
		return tlsCopy(dst, tc, m)
	}
	if n, handled, err := spliceCopy(dst, src, m); handled {
		return n, err
	}
	if n, handled, err := readyCopy(dst, src, m); handled {
		return n, err
	}
	if n, handled, err := waitCopy(dst, src, m); handled { // wait.go
		return n, err
	}
	bp := getBuf()
	defer putBuf(bp)
	if m != nil {
		return io.CopyBuffer(touchWriter{dst, m}, touchReader{src, m}, *bp)
	}
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}

// expired is a deadline in the past: a read under it returns what is
// buffered, or a timeout at once instead of waiting for the network.
var expired = time.Unix(1, 0)

// tlsCopy copies from a TLS connection to dst. It waits for data with a
// one-byte read, which decrypts a whole record into src's own buffer, and
// only then takes a pooled buffer for the rest of the record, read under
// an expired deadline so that it never waits for the network: an idle
// direction holds no copy buffer (io.CopyBuffer would pin 32 KiB per
// direction for the life of the relay). A timeout is not fatal to a
// crypto/tls connection; the read deadline is cleared after each record,
// so src must carry none of its own.
func tlsCopy(dst io.Writer, src *tls.Conn, m *meter) (int64, error) {
	var (
		first   [1]byte
		written int64
	)
	for {
		n, err := src.Read(first[:])
		if n == 0 {
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return written, err
		}
		m.touch()
		bp := getBuf()
		buf := *bp
		buf[0] = first[0]
		k := 1
		if err == nil {
			src.SetReadDeadline(expired)
			var r int
			r, err = src.Read(buf[1:])
			src.SetReadDeadline(time.Time{})
			k += r
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = nil
			}
		}
		w, werr := dst.Write(buf[:k])
		putBuf(bp)
		if w > 0 {
			m.moved(int64(w))
		}
		written += int64(w)
		switch {
		case werr != nil:
			return written, werr
		case errors.Is(err, io.EOF):
			return written, nil
		case err != nil:
			return written, err
		}
	}
}

// quiet drops the errors that a normal end of a relay produces.
func quiet(err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
		return nil
	}
	return err
}

const bufSize = 32 << 10

// bufs is a process-wide cache of copy buffers, like the standard library's
// own; it holds no state with meaning.
var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func getBuf() *[]byte  { return bufs.Get().(*[]byte) }
func putBuf(b *[]byte) { bufs.Put(b) }
