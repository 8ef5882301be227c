package pipe

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

const (
	spliceMove     = 0x1 // SPLICE_F_MOVE
	spliceNonblock = 0x2 // SPLICE_F_NONBLOCK
	setPipeSize    = 1031
	// pipeSize is the kernel pipe size asked for, as the standard library
	// does; the kernel may grant less.
	pipeSize = 1 << 20
	// maxCachedPipes bounds the pipes kept open for reuse. Only transfers
	// in flight hold a pipe, so a small cache serves thousands of links.
	maxCachedPipes = 64
)

// kpipe is a kernel pipe used as splice's intermediate buffer.
type kpipe struct {
	r, w int
	size int
}

// pipeCache is a process-wide free list of empty kernel pipes.
type pipeCache struct {
	mu   sync.Mutex
	free []*kpipe
}

var pipes pipeCache

func (c *pipeCache) get() (*kpipe, error) {
	c.mu.Lock()
	if n := len(c.free); n > 0 {
		p := c.free[n-1]
		c.free = c.free[:n-1]
		c.mu.Unlock()
		return p, nil
	}
	c.mu.Unlock()
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, err
	}
	p := &kpipe{r: fds[0], w: fds[1], size: 64 << 10}
	if n, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(p.w), setPipeSize, pipeSize); errno == 0 {
		p.size = int(n)
	}
	return p, nil
}

// put returns an empty pipe to the cache, or closes it.
func (c *pipeCache) put(p *kpipe) {
	c.mu.Lock()
	if len(c.free) < maxCachedPipes {
		c.free = append(c.free, p)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	p.close()
}

func (p *kpipe) close() {
	syscall.Close(p.r)
	syscall.Close(p.w)
}

// socketConn returns the raw connection of a stream socket that has no
// user-space buffering, or false.
func socketConn(c net.Conn) (syscall.RawConn, bool) {
	var rc syscall.RawConn
	var err error
	switch c := c.(type) {
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	case *net.UnixConn:
		if c.LocalAddr().Network() != "unix" {
			return nil, false
		}
		rc, err = c.SyscallConn()
	default:
		return nil, false
	}
	return rc, err == nil
}

// spliceCopy moves src to dst through a kernel pipe taken only while bytes
// are in flight. handled is false when either side is not a socket.
func spliceCopy(dst, src net.Conn, mt *meter) (written int64, handled bool, err error) {
	srcRC, ok := socketConn(src)
	if !ok {
		return 0, false, nil
	}
	dstRC, ok := socketConn(dst)
	if !ok {
		return 0, false, nil
	}
	// Small messages (request/response traffic) take the read/write path:
	// a read and a write cost less than a splice in and out of a pipe
	// and take no pipe. A read that fills the buffer means bulk data:
	// splice from then on, and back to read/write after smallRuns
	// splices in a row that each moved less than smallMove bytes.
	bulk, small := false, 0
	for {
		if !bulk {
			n, fill, err := readWrite(dst, srcRC, mt)
			written += int64(n)
			if err != nil || n == 0 {
				return written, true, err
			}
			bulk = fill
			small = 0
			continue
		}
		n, rerr, werr := spliceOnce(dstRC, srcRC, mt)
		if werr != nil {
			return written, true, werr
		}
		if rerr != nil {
			if errors.Is(rerr, syscall.EINVAL) && written == 0 {
				return 0, false, nil // kernel or socket type without splice
			}
			return written, true, rerr
		}
		if n == 0 {
			return written, true, nil // EOF
		}
		written += n
		if n < smallMove {
			if small++; small >= smallRuns {
				bulk = false
			}
		} else {
			small = 0
		}
	}
}

// spliceOnce splices what the socket src holds into a kernel pipe and
// out to dst, waiting for src on the runtime's poller (under src's
// deadline) without holding a pipe: it takes one inside the poller's
// callback and gives it back before asking the poller to wait. n == 0
// with nil errors is EOF. rerr is the read side's error (EINVAL: no
// splice for this socket or kernel, nothing was moved); werr is an error
// writing to dst, after which bytes may be lost in the closed pipe, so it
// is never a reason to fall back to read/write.
func spliceOnce(dst, src syscall.RawConn, mt *meter) (n int64, rerr, werr error) {
	var (
		p     *kpipe
		opErr error
	)
	rerr = src.Read(func(fd uintptr) bool {
		p, opErr = pipes.get()
		if opErr != nil {
			return true
		}
		for {
			n, opErr = splice(int(fd), p.w, p.size)
			if opErr != syscall.EINTR {
				break
			}
		}
		if opErr == syscall.EAGAIN {
			pipes.put(p)
			p = nil
			return false
		}
		return true
	})
	if rerr == nil {
		rerr = opErr
	}
	if rerr != nil {
		if p != nil {
			pipes.put(p) // nothing was moved into it
		}
		return 0, rerr, nil
	}
	if n == 0 {
		pipes.put(p)
		return 0, nil, nil
	}
	mt.touch()
	if werr := drain(dst, p, n, mt); werr != nil {
		p.close() // it may still hold bytes
		return 0, nil, werr
	}
	pipes.put(p)
	return n, nil, nil
}

// Thresholds of spliceCopy's switch between read/write and splice.
const (
	smallMove = 4 << 10
	smallRuns = 2
)

// readWrite waits for src to be readable, reads once into a pooled buffer
// and writes what it read to dst. n == 0 with a nil error is EOF; full
// reports that the read filled the buffer.
func readWrite(dst net.Conn, src syscall.RawConn, mt *meter) (n int, full bool, err error) {
	var (
		bp    *[]byte
		opErr error
	)
	rerr := src.Read(func(fd uintptr) bool {
		bp = getBuf()
		for {
			n, opErr = syscall.Read(int(fd), *bp)
			if opErr != syscall.EINTR {
				break
			}
		}
		if opErr == syscall.EAGAIN {
			putBuf(bp)
			bp = nil
			return false
		}
		return true
	})
	if rerr == nil {
		rerr = opErr
	}
	if rerr != nil || n <= 0 {
		if bp != nil {
			putBuf(bp)
		}
		return 0, false, rerr
	}
	mt.touch()
	full = n == len(*bp)
	m, werr := dst.Write((*bp)[:n])
	putBuf(bp)
	if m > 0 {
		mt.moved(int64(m))
	}
	return m, full, werr
}

// drain moves n bytes from p to the socket behind dst, waiting for it to be
// writable as needed, and records each partial move in mt.
func drain(dst syscall.RawConn, p *kpipe, n int64, mt *meter) error {
	var opErr error
	err := dst.Write(func(fd uintptr) bool {
		for n > 0 {
			m, e := splice(p.r, int(fd), int(n))
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return false
			case e != nil:
				opErr = e
				return true
			case m == 0:
				opErr = io.ErrShortWrite
				return true
			}
			n -= m
			mt.moved(m) // a slow reader taking bytes is not idle
		}
		return true
	})
	if err != nil {
		return err
	}
	return opErr
}

func splice(from, to, n int) (int64, error) {
	m, err := syscall.Splice(from, nil, to, nil, n, spliceMove|spliceNonblock)
	return int64(m), err
}

// readyCopy copies from a socket to any writer, reading into a pooled
// buffer only once the socket is readable, so an idle direction holds no
// buffer. handled is false when src is not a socket.
func readyCopy(dst, src net.Conn, mt *meter) (written int64, handled bool, err error) {
	srcRC, ok := socketConn(src)
	if !ok {
		return 0, false, nil
	}
	for {
		// readWrite returns 0 and a nil error at EOF.
		m, _, err := readWrite(dst, srcRC, mt)
		written += int64(m)
		if err != nil || m == 0 {
			return written, true, err
		}
	}
}
