package pipe

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// A direction whose source is a socket (or crypto/tls over a socket) waits
// for bytes without a goroutine: it reads until the socket would block,
// then registers the socket, one-shot and level-triggered, in a
// process-wide epoll set and returns. One goroutine waits on that set for
// the whole process and starts a goroutine for a direction whose socket
// turned readable. Held, idle relays thus cost no stack: a goroutine
// per direction (two per relay, in the daemon and again in the agent) was
// most of what a held connection cost.
//
// A bulk transfer keeps its goroutine between splices (the runtime's own
// poller wakes it, as cheaply as before) until its source has been silent
// for bulkLinger, then parks.

// Kinds of parked direction.
const (
	kindSplice = iota + 1 // socket to socket: read/write, splice for bulk
	kindRead              // socket to any writer: read/write
	kindTLS               // crypto/tls over a socket to any writer
)

// bulkLinger is how long a direction in bulk (splice) mode waits for its
// source on the runtime's poller, keeping its goroutine, before it parks.
const bulkLinger = 500 * time.Millisecond

// poll is the state of a direction that can park. Between a park and the
// resume that follows, no goroutine touches it but the one resuming it.
type poll struct {
	kind  int
	rc    syscall.RawConn // the source socket
	dstRC syscall.RawConn // the destination socket (kindSplice)
	tc    *tls.Conn       // the source (kindTLS)
	id    uint64          // key in the parker's table; 0: not registered
	added bool            // the socket is in the epoll set
	armed bool            // parked, waiting for an event; guarded by parker.mu
	woke  bool            // resumed by an event (kindTLS reads the socket)
	bulk  bool            // kindSplice: splicing
	small int             // kindSplice: small splices in a row
	mark  int64           // kindSplice: bytes moved when the linger began
}

// parker is the process-wide epoll set of parked directions. Like the
// buffer and pipe caches, it holds no state with meaning beyond the
// relays registered in it.
type parker struct {
	once   sync.Once
	epfd   int
	err    error
	mu     sync.Mutex
	next   uint64
	halves map[uint64]*half
}

var parked parker

// init creates the epoll set and its goroutine, once.
func (p *parker) init() error {
	p.once.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.err = os.NewSyscallError("epoll_create1", err)
			return
		}
		p.epfd = fd
		p.halves = make(map[uint64]*half)
		go p.loop()
	})
	return p.err
}

// loop waits for events for the life of the process and resumes each
// direction whose socket turned readable (or failed).
func (p *parker) loop() {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			time.Sleep(10 * time.Millisecond) // not expected; do not spin
			continue
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if h := p.take(id); h != nil {
				h.woke = true
				go h.run()
			}
		}
	}
}

// take disarms the direction registered as id and returns it, or nil when
// it is not parked (a stale event, or another resumed it first).
func (p *parker) take(id uint64) *half {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.halves[id]
	if h == nil || !h.armed {
		return nil
	}
	h.armed = false
	return h
}

// parkable reports whether h can wait in the epoll set, and prepares it.
func (h *half) parkable() bool {
	if parked.init() != nil {
		return false
	}
	if tc, ok := h.src.(*tls.Conn); ok {
		// Only an established connection: a handshake must not run
		// under the expired deadline of a non-blocking read.
		if !tc.ConnectionState().HandshakeComplete {
			return false
		}
		rc, ok := socketConn(tc.NetConn())
		if !ok {
			return false
		}
		h.kind, h.rc, h.tc = kindTLS, rc, tc
		return true
	}
	rc, ok := socketConn(h.src)
	if !ok {
		return false
	}
	h.kind, h.rc = kindRead, rc
	if drc, ok := socketConn(h.dst); ok {
		h.kind, h.dstRC = kindSplice, drc
	}
	return true
}

// run moves bytes until the source would block, then parks h, or until
// the direction ends.
func (h *half) run() {
	for {
		n, wait, err := h.step()
		h.n += n
		if err == errRetry {
			continue
		}
		if err != nil || (n == 0 && !wait) {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			h.end(h.n, err)
			return
		}
		if !wait {
			continue
		}
		if err := h.park(); err != nil {
			if parked.take(h.id) != h {
				return // a close resumed it already
			}
			h.end(h.n, err)
		}
		return
	}
}

// park registers h's socket in the epoll set, armed for one event. After
// it returns nil, h belongs to whoever resumes it.
func (h *half) park() error {
	parked.mu.Lock()
	if h.id == 0 {
		parked.next++
		h.id = parked.next
		parked.halves[h.id] = h
	}
	h.armed = true
	id := h.id
	parked.mu.Unlock()
	op := syscall.EPOLL_CTL_MOD
	if !h.added {
		op, h.added = syscall.EPOLL_CTL_ADD, true
	}
	var ctlErr error
	err := h.rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{
			Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
			Fd:     int32(uint32(id)),
			Pad:    int32(uint32(id >> 32)),
		}
		ctlErr = syscall.EpollCtl(parked.epfd, op, int(fd), &ev)
		switch {
		case ctlErr == syscall.EEXIST && op == syscall.EPOLL_CTL_ADD:
			ctlErr = syscall.EpollCtl(parked.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		case ctlErr == syscall.ENOENT && op == syscall.EPOLL_CTL_MOD:
			ctlErr = syscall.EpollCtl(parked.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err != nil {
		return err
	}
	if ctlErr != nil {
		return os.NewSyscallError("epoll_ctl", ctlErr)
	}
	return nil
}

// wake resumes h if it is parked (its relay is being closed).
func (h *half) wake() {
	parked.mu.Lock()
	ok := h.id != 0 && h.armed
	h.armed = false
	parked.mu.Unlock()
	if ok {
		h.woke = true
		go h.run()
	}
}

// forget removes an ended direction from the parker's table. Its socket
// leaves the epoll set when it is closed.
func (h *half) forget() {
	if h.id == 0 {
		return
	}
	parked.mu.Lock()
	delete(parked.halves, h.id)
	parked.mu.Unlock()
}

// step makes one transfer. wait reports that the source has no bytes
// now; n == 0 with neither wait nor an error is EOF.
func (h *half) step() (n int64, wait bool, err error) {
	switch h.kind {
	case kindTLS:
		return h.stepTLS()
	case kindSplice:
		if h.bulk {
			return h.stepSplice()
		}
	}
	m, full, wait, err := readOnce(h.dst, h.rc, h.m)
	if h.kind == kindSplice && full && err == nil {
		h.enterBulk()
	}
	return int64(m), wait, err
}

// enterBulk switches to splice with the linger deadline on the source.
func (h *half) enterBulk() {
	h.bulk, h.small, h.mark = true, 0, h.n
	h.src.SetReadDeadline(time.Now().Add(bulkLinger))
}

// leaveBulk switches back to read/write and clears the linger deadline.
func (h *half) leaveBulk() {
	h.bulk = false
	h.src.SetReadDeadline(time.Time{})
}

// stepSplice is one splice of the bulk path, waiting for the source on
// the runtime's poller until the linger deadline; silent that long, the
// direction leaves bulk mode and parks.
func (h *half) stepSplice() (int64, bool, error) {
	n, err := spliceOnce(h.dstRC, h.rc, h.m)
	if errors.Is(err, syscall.EINVAL) {
		// A socket type or kernel without splice: read/write only.
		h.kind = kindRead
		h.leaveBulk()
		return 0, false, errRetry
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if h.n > h.mark { // still moving: linger again
			h.mark = h.n
			h.src.SetReadDeadline(time.Now().Add(bulkLinger))
			return 0, false, errRetry
		}
		h.leaveBulk()
		return 0, true, nil
	}
	if err != nil || n == 0 {
		return n, false, err
	}
	if n < smallMove {
		if h.small++; h.small >= smallRuns {
			h.leaveBulk()
		}
	} else {
		h.small = 0
	}
	return n, false, nil
}

// stepTLS is one record of a TLS source. Resumed by an event, it reads the
// socket (waiting for the rest of a record if need be); otherwise it only
// takes what crypto/tls already holds, under an expired deadline, and
// reports wait once it holds nothing whole.
func (h *half) stepTLS() (int64, bool, error) {
	if h.woke {
		h.woke = false
		n, err := tlsRecord(h.dst, h.tc, h.m)
		return n, false, err
	}
	h.tc.SetReadDeadline(expired)
	bp := getBuf()
	r, err := h.tc.Read(*bp)
	h.tc.SetReadDeadline(time.Time{})
	if r == 0 {
		putBuf(bp)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, true, nil
		}
		if err == nil {
			return 0, false, errRetry
		}
		return 0, false, err
	}
	h.m.touch()
	w, werr := h.dst.Write((*bp)[:r])
	putBuf(bp)
	if w > 0 {
		h.m.moved(int64(w))
	}
	if werr != nil {
		return int64(w), false, werr
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return int64(w), false, err
	}
	return int64(w), false, nil
}

// readOnce reads what the socket src holds (once) into a pooled buffer
// and writes it to dst. wait reports that src had nothing; n == 0 with
// neither wait nor an error is EOF; full reports that the read filled the
// buffer.
func readOnce(dst net.Conn, src syscall.RawConn, mt *meter) (n int, full, wait bool, err error) {
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
			bp, wait, opErr, n = nil, true, nil, 0
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
		return 0, false, wait && rerr == nil, rerr
	}
	mt.touch()
	full = n == len(*bp)
	m, werr := dst.Write((*bp)[:n])
	putBuf(bp)
	if m > 0 {
		mt.moved(int64(m))
	}
	return m, full, false, werr
}

// spliceOnce splices what the socket src holds into a kernel pipe and
// out to dst, waiting for src on the runtime's poller (under src's
// deadline). n == 0 with a nil error is EOF.
func spliceOnce(dst, src syscall.RawConn, mt *meter) (int64, error) {
	var (
		p     *kpipe
		n     int64
		opErr error
	)
	rerr := src.Read(func(fd uintptr) bool {
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
			pipes.put(p)
		}
		return 0, rerr
	}
	if n == 0 {
		pipes.put(p)
		return 0, nil
	}
	mt.touch()
	if werr := drain(dst, p, n, mt); werr != nil {
		p.close()
		return 0, werr
	}
	pipes.put(p)
	return n, nil
}
