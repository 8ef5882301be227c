package pipe

import (
	"errors"
	"io"
	"net"
)

// readWaiter is a stream that can wait for bytes to read without taking
// them (transports/quic's streams). Copying from one, [Copy] and [Join]
// take a buffer only once bytes are there, so an idle direction holds none,
// as with a socket source.
type readWaiter interface {
	// WaitRead blocks until Read would return without waiting: bytes are
	// there, or the stream ended (then it may return Read's error).
	WaitRead() error
}

// readNotifier is a readWaiter that can also call back once it is
// readable (transports/yamux's streams). On Linux a direction copying from
// one parks like one from a socket: after linger of silence it registers
// the callback and its goroutine returns (see park_linux.go).
type readNotifier interface {
	readWaiter
	// NotifyRead arranges one call of f once Read would not block, and
	// returns true; when Read would not block now it returns false and
	// never calls f. f must not block.
	NotifyRead(f func()) (armed bool)
}

// waitCopy copies from a readWaiter to any writer, reading into a pooled
// buffer only once bytes are there. handled is false when src is not a
// readWaiter.
func waitCopy(dst, src net.Conn, mt *meter) (written int64, handled bool, err error) {
	rw, ok := src.(readWaiter)
	if !ok {
		return 0, false, nil
	}
	for {
		n, err := waitStep(dst, src, rw, mt)
		written += n
		switch {
		case err == errRetry:
		case err != nil:
			return written, true, err
		case n == 0:
			return written, true, nil // EOF
		}
	}
}

// waitStep waits for src (rw) to be readable and copies one read of it to
// dst. n == 0 with a nil error is the end of src; a step that moved
// nothing and should be retried returns errRetry.
func waitStep(dst, src net.Conn, rw readWaiter, mt *meter) (int64, error) {
	if err := rw.WaitRead(); err != nil {
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return 0, err
	}
	bp := getBuf()
	defer putBuf(bp)
	n, rerr := src.Read(*bp)
	if n > 0 {
		mt.touch()
		m, werr := dst.Write((*bp)[:n])
		if m > 0 {
			mt.moved(int64(m))
		}
		if werr == nil && m < n {
			werr = io.ErrShortWrite
		}
		if werr != nil {
			return int64(m), werr
		}
		if errors.Is(rerr, io.EOF) {
			rerr = nil // the next read returns it again
		}
		return int64(m), rerr
	}
	switch {
	case errors.Is(rerr, io.EOF):
		return 0, nil
	case rerr == nil:
		return 0, errRetry
	}
	return 0, rerr
}
