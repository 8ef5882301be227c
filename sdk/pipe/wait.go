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

// waitCopy copies from a readWaiter to any writer, reading into a pooled
// buffer only once bytes are there. handled is false when src is not a
// readWaiter.
func waitCopy(dst, src net.Conn, mt *meter) (written int64, handled bool, err error) {
	rw, ok := src.(readWaiter)
	if !ok {
		return 0, false, nil
	}
	for {
		if err := rw.WaitRead(); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return written, true, err
		}
		bp := getBuf()
		n, rerr := src.Read(*bp)
		if n > 0 {
			mt.touch()
			m, werr := dst.Write((*bp)[:n])
			if m > 0 {
				mt.moved(int64(m))
			}
			written += int64(m)
			if werr == nil && m < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				putBuf(bp)
				return written, true, werr
			}
		}
		putBuf(bp)
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				rerr = nil
			}
			return written, true, rerr
		}
	}
}
