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
// idle relayed connections pin no pipes and no buffers. When the source is
// a socket but the destination is not (TLS, a multiplexed stream), it
// likewise waits for readability before it takes a pooled buffer, and from
// a crypto/tls connection it waits for a record before it takes one.
//
// On Linux, a direction whose source is a socket (or crypto/tls over one)
// holds no goroutine either once its source has been silent for 100 ms:
// it waits in a process-wide epoll set until bytes come (see [Start]), so
// an idle relay costs its two streams and a few hundred bytes. So does a
// direction whose source is a stream that can call back once it is
// readable (a NotifyRead method, as transports/yamux's streams have).
// Other streams keep a parked goroutine per direction.
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
		res  Result
		err  error
		done = make(chan struct{})
	)
	Start(ctx, a, b, opts, func(r Result, e error) {
		res, err = r, e
		close(done)
	})
	<-done
	return res, err
}

// Start is [JoinWith] without the wait: it returns at once, relays a and
// b as JoinWith does, and once both directions have ended and both
// streams are closed calls done, once, with what JoinWith would return.
// done runs on a goroutine of the relay and must not block for long.
//
// Between sockets on Linux (and from a crypto/tls connection over a
// socket) a direction holds no goroutine while it waits for bytes: after
// 100 ms without any it waits in a process-wide epoll set, and a goroutine
// runs only while bytes flow, so a held, idle relay costs its streams, a
// few hundred bytes of state and no stack. Such a direction uses its
// source's read deadline. A stream closed under the relay by someone else
// (a transport dropping a frozen agent's streams) is noticed within a
// second and ends the relay. A source with a NotifyRead(f func()) (armed
// bool) method (see transports/yamux) parks the same way, its callback in
// place of the epoll set; it must call f when the source is closed or its
// read deadline changes, too. Other streams get a goroutine per direction
// for the life of the relay.
//
// Start owns a and b: the caller must not read, write or set deadlines on
// them.
func Start(ctx context.Context, a, b net.Conn, opts Options, done func(Result, error)) {
	j := &join{ctx: ctx, a: a, b: b, done: done}
	if opts.IdleTimeout > 0 {
		j.act = newActivity()
		j.timer = j.act.watch(opts.IdleTimeout, func() { j.closeBoth() })
	}
	j.halves[0] = half{j: j, dst: b, src: a, m: newMeter(j.act, opts.AToB)}
	j.halves[1] = half{j: j, dst: a, src: b, m: newMeter(j.act, opts.BToA)}
	j.pending.Store(2)
	j.stop = context.AfterFunc(ctx, func() { j.closeBoth() })
	for i := range j.halves {
		j.halves[i].start()
	}
}

// join is one relay started by [Start].
type join struct {
	ctx     context.Context
	a, b    net.Conn
	done    func(Result, error)
	act     *activity
	timer   *idleTimer
	stop    func() bool // stops the AfterFunc on ctx
	closed  atomic.Bool
	pending atomic.Int32 // directions not yet ended
	halves  [2]half      // a→b, b→a
}

// closeBoth closes both streams once and reports whether they were
// already closed, so that errors it causes are not reported as faults.
// A direction waiting for bytes in the epoll set is resumed, to see the
// close and end.
func (j *join) closeBoth() (already bool) {
	if j.closed.Swap(true) {
		return true
	}
	j.a.Close()
	j.b.Close()
	for i := range j.halves {
		j.halves[i].wake()
	}
	return false
}

// half is one direction of a join, src to dst.
type half struct {
	j        *join
	dst, src net.Conn
	m        *meter
	n        int64
	err      error
	poll     // park_linux.go: what a direction needs to wait without a goroutine
}

// start runs the direction: parked in the epoll set between transfers
// when its source allows, else on a goroutine of its own.
func (h *half) start() {
	if h.parkable() {
		go h.run()
		return
	}
	go func() {
		n, err := copyConn(h.dst, h.src, h.m)
		h.end(n, err)
	}()
}

// end records the direction's end: it half-closes dst after EOF, or
// closes both on error (an error caused by the other direction closing
// both is dropped). The last direction to end finishes the join.
func (h *half) end(n int64, err error) {
	h.forget()
	if err != nil {
		if h.j.closeBoth() {
			err = nil
		}
	} else if cw, ok := h.dst.(sdk.CloseWriter); !ok || cw.CloseWrite() != nil {
		h.j.closeBoth()
	}
	h.n, h.err = n, err
	if h.j.pending.Add(-1) == 0 {
		h.j.finish()
	}
}

// finish closes both streams and reports the join's result.
func (j *join) finish() {
	if j.timer != nil {
		j.timer.stop()
	}
	j.stop()
	j.closeBoth()
	res := Result{AToB: j.halves[0].n, BToA: j.halves[1].n}
	var err error
	switch {
	case j.ctx.Err() != nil:
	case j.timer != nil && j.timer.expired.Load():
		err = ErrIdleTimeout
	default:
		err = errors.Join(quiet(j.halves[0].err), quiet(j.halves[1].err))
	}
	j.done(res, err)
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
	var written int64
	for {
		n, err := tlsRecord(dst, src, m, time.Time{})
		written += n
		switch {
		case err == errRetry:
		case errors.Is(err, io.EOF):
			return written, nil
		case err != nil:
			return written, err
		}
	}
}

// tlsRecord is one step of [tlsCopy]: it waits for a record and writes
// it to dst. It returns errRetry when a record carried no data, and
// io.EOF (possibly with bytes) at the end of src. The read deadline of
// src is restore again after its read of the rest of the record.
func tlsRecord(dst io.Writer, src *tls.Conn, m *meter, restore time.Time) (int64, error) {
	var first [1]byte
	n, err := src.Read(first[:])
	if n == 0 {
		if err == nil {
			return 0, errRetry
		}
		return 0, err
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
		src.SetReadDeadline(restore)
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
	if werr != nil {
		return int64(w), werr
	}
	return int64(w), err
}

// errRetry is a step that moved nothing and should be tried again.
var errRetry = errors.New("pipe: retry")

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
