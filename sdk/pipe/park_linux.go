package pipe

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A direction whose source is a socket (or crypto/tls over a socket) waits
// for bytes without a goroutine once its source has been silent for
// linger: it registers the socket, one-shot and level-triggered, in a
// process-wide epoll set and its goroutine returns. That epoll set is
// itself waited on through the runtime's poller (it is pollable), and an
// event starts a goroutine for the direction whose socket turned
// readable. Held, idle relays thus cost no stack: a goroutine per
// direction (two per relay, in the daemon and again in the agent) was
// most of what a held connection cost.
//
// A direction whose source is a stream that calls back once readable
// (readNotifier: transports/yamux's streams) parks the same way, with the
// stream's callback in place of the epoll set: the callback resumes it.
//
// While bytes flow, and for linger after, a direction keeps its goroutine
// and waits on the runtime's poller as before, under a read deadline
// renewed once per linger: request/response traffic and bulk transfers
// (splice) pay no park and wake per message.

// Kinds of parked direction.
const (
	kindSplice = iota + 1 // socket to socket: read/write, splice for bulk
	kindRead              // socket to any writer: read/write
	kindTLS               // crypto/tls over a socket to any writer
	kindNotify            // a readNotifier to any writer: waits for bytes, then read/write
)

// linger is how long a direction waits for its source on the runtime's
// poller, keeping its goroutine, before it parks.
const linger = 100 * time.Millisecond

// poll is the state of a direction that can park. Between a park and the
// resume that follows, no goroutine touches it but the one resuming it.
type poll struct {
	kind     int
	rc       syscall.RawConn // the source socket
	dstRC    syscall.RawConn // the destination socket (kindSplice)
	tc       *tls.Conn       // the source (kindTLS)
	rn       readNotifier    // the source (kindNotify)
	resume   func()          // h.wake, made once (kindNotify)
	lingerT  *time.Timer     // ends the linger (kindNotify, see lingerEnd)
	active   atomic.Bool     // bytes moved since lingerT last looked (kindNotify)
	id       uint64          // key in the parker's table; 0: not registered
	added    bool            // the socket is in the epoll set
	armed    bool            // parked, waiting for an event; guarded by parker.mu
	bulk     bool            // kindSplice: splicing
	small    int             // kindSplice: small splices in a row
	mark     int64           // bytes moved when the linger began
	deadline time.Time       // the source's read deadline: the linger's end
}

// parker is the process-wide epoll set of parked directions. Like the
// buffer and pipe caches, it holds no state with meaning beyond the
// relays registered in it.
type parker struct {
	once   sync.Once
	file   *os.File
	epfd   int
	err    error
	mu     sync.Mutex
	next   uint64
	halves map[uint64]*half
}

var parked parker

// init creates the epoll set and the goroutine that waits on it, once.
func (p *parker) init() error {
	p.once.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.err = os.NewSyscallError("epoll_create1", err)
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			p.err = os.NewSyscallError("setnonblock", err)
			return
		}
		// Non-blocking, the epoll descriptor joins the runtime's poller.
		f := os.NewFile(uintptr(fd), "pipe-epoll")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			p.err = err
			return
		}
		p.file, p.epfd = f, fd // the file keeps the descriptor open
		p.halves = make(map[uint64]*half)
		go p.loop(rc)
		go p.sweep()
	})
	return p.err
}

// loop waits for events for the life of the process and resumes each
// direction whose socket turned readable (or failed).
func (p *parker) loop(rc syscall.RawConn) {
	events := make([]syscall.EpollEvent, 256)
	for {
		err := rc.Read(func(fd uintptr) bool {
			n, err := syscall.EpollWait(int(fd), events, 0)
			if err != nil || n <= 0 {
				return err != nil && err != syscall.EINTR && err != syscall.EAGAIN
			}
			for _, ev := range events[:n] {
				id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
				if h := p.take(id); h != nil {
					go h.run()
				}
			}
			return true
		})
		if err != nil {
			time.Sleep(10 * time.Millisecond) // not expected; do not spin
		}
	}
}

// sweepEvery is how often the parker looks for parked directions whose
// source someone else closed.
const sweepEvery = time.Second

// sweep resumes, every sweepEvery, the parked directions whose socket was
// closed by someone other than their relay (a transport closing the
// streams of an agent that froze): closing a descriptor takes it out of
// the epoll set without an event, so nothing else would resume them. Each
// check is a no-op Control call on the socket, which fails once the
// socket is closed: well under a millisecond per sweep for thousands of
// parked directions.
func (p *parker) sweep() {
	var dead []*half
	for {
		time.Sleep(sweepEvery)
		p.mu.Lock()
		for _, h := range p.halves {
			// A kindNotify source calls back when closed: no check.
			if h.armed && h.rc != nil && h.rc.Control(func(uintptr) {}) != nil {
				h.armed = false
				dead = append(dead, h)
			}
		}
		p.mu.Unlock()
		for i, h := range dead {
			go h.run()
			dead[i] = nil
		}
		dead = dead[:0]
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
	if rn, ok := h.src.(readNotifier); ok {
		h.kind, h.rn, h.resume = kindNotify, rn, h.wake
		h.lingerT = time.AfterFunc(linger, h.lingerEnd)
		h.lingerT.Stop() // started by linger
		return true
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

// run moves bytes, waiting for the source on the runtime's poller, until
// the source has been silent for linger; then it parks h. It returns when
// h is parked or ended.
func (h *half) run() {
	h.linger()
	for {
		n, err := h.step()
		h.n += n
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if h.n > h.mark && h.kind != kindNotify { // still moving: linger again
				h.linger()
				continue
			}
			h.src.SetReadDeadline(time.Time{})
			if err := h.park(); err != nil {
				if parked.take(h.id) != h {
					return // a close resumed it already
				}
				if err == errReady {
					h.linger()
					continue
				}
				h.end(h.n, err)
			}
			return
		case err == errRetry:
		case err != nil || n == 0:
			h.end(h.n, err)
			return
		}
	}
}

// linger sets the source's read deadline linger from now. A kindNotify
// direction instead (re)starts its linger timer, which sets an expired
// deadline only once the source has been silent for linger: a deadline
// on a multiplexed stream costs a runtime timer per wait for bytes (5%
// more per 64-byte round trip through a yamux relay pair, see
// BenchmarkRelayPingPong in transports/yamux), this a timer per linger.
func (h *half) linger() {
	h.mark = h.n
	h.deadline = time.Now().Add(linger)
	if h.kind == kindNotify {
		h.src.SetReadDeadline(time.Time{})
		h.lingerT.Reset(linger)
		return
	}
	h.src.SetReadDeadline(h.deadline)
}

// lingerEnd runs linger after a kindNotify direction's last look: when no
// bytes moved since, it interrupts the direction's wait for them (which
// then parks), else it looks again in linger.
func (h *half) lingerEnd() {
	if h.active.Swap(false) {
		h.lingerT.Reset(linger)
		return
	}
	h.src.SetReadDeadline(expired)
}

// park registers h's socket in the epoll set, armed for one event, or
// h's callback with its kindNotify source. After it returns nil, h
// belongs to whoever resumes it. errReady: the source is readable
// already, and h is still armed (take it back).
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
	if h.kind == kindNotify {
		if !h.rn.NotifyRead(h.resume) {
			return errReady
		}
		return nil
	}
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

// errReady is a park that found its source readable already.
var errReady = errors.New("pipe: source readable")

// wake resumes h if it is parked: its relay is being closed, or its
// kindNotify source turned readable.
func (h *half) wake() {
	parked.mu.Lock()
	ok := h.id != 0 && h.armed
	h.armed = false
	parked.mu.Unlock()
	if ok {
		go h.run()
	}
}

// forget removes an ended direction from the parker's table. Its socket
// leaves the epoll set when it is closed.
func (h *half) forget() {
	if h.lingerT != nil {
		h.lingerT.Stop()
	}
	if h.id == 0 {
		return
	}
	parked.mu.Lock()
	delete(parked.halves, h.id)
	parked.mu.Unlock()
}

// step makes one transfer, waiting for the source on the runtime's
// poller under the linger deadline. n == 0 with a nil error is EOF; a
// step that moved nothing and should be retried returns errRetry.
func (h *half) step() (int64, error) {
	switch h.kind {
	case kindNotify:
		n, err := waitStep(h.dst, h.src, h.rn, h.m)
		if n > 0 {
			h.active.Store(true)
		}
		return n, err
	case kindTLS:
		n, err := tlsRecord(h.dst, h.tc, h.m, h.deadline)
		if errors.Is(err, io.EOF) {
			if n > 0 {
				return n, nil // EOF comes again on the next read
			}
			err = nil
		}
		return n, err
	case kindSplice:
		if h.bulk {
			return h.stepSplice()
		}
	}
	m, full, err := readWrite(h.dst, h.rc, h.m)
	if err == nil && m == 0 {
		return 0, nil // EOF
	}
	if h.kind == kindSplice && full && err == nil {
		h.bulk, h.small = true, 0
	}
	return int64(m), err
}

// stepSplice is one splice of the bulk path; after smallRuns small
// splices in a row the direction goes back to read/write.
func (h *half) stepSplice() (int64, error) {
	n, err, werr := spliceOnce(h.dstRC, h.rc, h.m)
	if werr != nil {
		return 0, werr
	}
	if errors.Is(err, syscall.EINVAL) {
		// A socket type or kernel without splice: read/write only.
		h.kind, h.bulk = kindRead, false
		return 0, errRetry
	}
	if err != nil || n == 0 {
		return n, err
	}
	if n < smallMove {
		if h.small++; h.small >= smallRuns {
			h.bulk = false
		}
	} else {
		h.small = 0
	}
	return n, nil
}
