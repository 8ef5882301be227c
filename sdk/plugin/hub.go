package plugin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// ticketLen is the size of the secret a host presents to claim a stream.
const ticketLen = 16

// claimTimeout is how long a stream waits for its host to claim it.
const claimTimeout = 15 * time.Second

// eventBacklog bounds the stream events waiting for the host to take them;
// beyond it events are dropped (the host then reads a mere EOF).
const eventBacklog = 4096

type ticket [ticketLen]byte

// hub runs in the plugin process. It holds streams the transport produced
// until the host claims them on a private unix socket, then joins each to
// its unix connection. Bytes thus cross the process boundary through the
// kernel (splice-capable on the host side), not through gRPC.
//
// Each stream has an owner: the handle of the session that yielded it, or
// 0 for an endpoint's. closeOwner ends every stream of a session (when its
// host is taken as frozen). A stream that ends abnormally (its transport
// stream failed, or closeOwner ended it) is reported on events, for the
// host to close its end of the unix connection.
type hub struct {
	dir  string
	path string
	ln   *net.UnixListener

	mu       sync.Mutex
	pending  map[ticket]*pendingStream
	joined   map[ticket]*joinedStream
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
	events   chan ticket
	dropped  atomic.Int64
	watchers atomic.Int32 // hosts taking events (Watch streams open)
	// onFail, when set, is called if the socket stops accepting claims for
	// good; Serve exits the plugin then, so that the host restarts it.
	onFail func(error)
	// onEnd, when set, is called once for every stream put, when the hub
	// closed it: joined is false when the host never claimed it.
	onEnd func(t ticket, joined bool)
	log   *slog.Logger
}

type pendingStream struct {
	conn  net.Conn
	owner uint64
	timer *time.Timer
}

type joinedStream struct {
	conn  net.Conn
	owner uint64
}

func newHub(log *slog.Logger, onFail func(error)) (*hub, error) {
	dir, err := os.MkdirTemp("", "iofog-transport-")
	if err != nil {
		return nil, fmt.Errorf("plugin: stream socket dir: %w", err)
	}
	path := filepath.Join(dir, "streams.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("plugin: stream socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{
		dir: dir, path: path, ln: ln,
		pending: map[ticket]*pendingStream{},
		joined:  map[ticket]*joinedStream{},
		ctx:     ctx, cancel: cancel,
		events: make(chan ticket, eventBacklog),
		onFail: onFail, log: log,
	}
	h.wg.Add(1)
	go h.serve()
	return h, nil
}

// put registers conn, yielded for owner, and returns the ticket that
// claims it; register, when not nil, is called with the ticket before the
// stream can be claimed. An unclaimed stream is closed after
// claimTimeout.
func (h *hub) put(conn net.Conn, owner uint64, register func(ticket)) (ticket, error) {
	var t ticket
	if _, err := rand.Read(t[:]); err != nil {
		return t, fmt.Errorf("plugin: ticket: %w", err)
	}
	if register != nil {
		register(t)
	}
	h.mu.Lock()
	h.pending[t] = &pendingStream{conn: conn, owner: owner, timer: time.AfterFunc(claimTimeout, func() {
		if c, _ := h.take(t); c != nil {
			c.Close()
			h.ended(t, false)
		}
	})}
	h.mu.Unlock()
	return t, nil
}

// ended reports that the hub closed the stream t.
func (h *hub) ended(t ticket, joined bool) {
	if h.onEnd != nil {
		h.onEnd(t, joined)
	}
}

func (h *hub) take(t ticket) (net.Conn, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pending[t]
	if p == nil {
		return nil, 0
	}
	delete(h.pending, t)
	p.timer.Stop()
	return p.conn, p.owner
}

func (h *hub) serve() {
	defer h.wg.Done()
	log := h.log
	retry := admission.Retry{Logger: log, What: "accepting stream claims from the host"}
	for {
		uc, err := h.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if retry.Wait(h.ctx, err) {
				continue
			}
			if h.ctx.Err() == nil {
				log.Error("accepting stream claims from the host stopped; no stream can reach the host", "err", err)
				if h.onFail != nil {
					h.onFail(err)
				}
			}
			return
		}
		retry.Reset()
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			var t ticket
			uc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(uc, t[:]); err != nil {
				uc.Close()
				return
			}
			uc.SetReadDeadline(time.Time{})
			h.mu.Lock()
			p := h.pending[t]
			if p != nil {
				delete(h.pending, t)
				p.timer.Stop()
				h.joined[t] = &joinedStream{conn: p.conn, owner: p.owner}
			}
			h.mu.Unlock()
			if p == nil {
				uc.Close()
				return
			}
			h.join(t, uc, p.conn)
			h.mu.Lock()
			delete(h.joined, t)
			h.mu.Unlock()
			h.ended(t, true)
		}()
	}
}

// event queues t for the host and reports whether a host takes it: false
// when no host watches or too many events wait.
func (h *hub) event(t ticket) bool {
	if h.watchers.Load() == 0 {
		return false
	}
	select {
	case h.events <- t:
		return true
	default:
		h.dropped.Add(1)
		return false
	}
}

// closeOwner ends every stream owner yielded, pending or joined, and
// reports the joined ones as aborted. It returns how many it ended.
func (h *hub) closeOwner(owner uint64) int {
	h.mu.Lock()
	var conns []net.Conn
	var unclaimed []ticket
	for t, p := range h.pending {
		if p.owner == owner {
			p.timer.Stop()
			conns = append(conns, p.conn)
			unclaimed = append(unclaimed, t)
			delete(h.pending, t)
		}
	}
	for _, js := range h.joined {
		if js.owner == owner {
			conns = append(conns, js.conn) // its join sees it broken
		}
	}
	h.mu.Unlock()
	for _, c := range conns {
		abort(c)
	}
	for _, t := range unclaimed {
		h.ended(t, false)
	}
	return len(conns)
}

// Aborter is implemented by transport streams that can end so that their
// peer sees an error rather than the end of the stream (a TCP reset, a
// WebSocket closed without its FIN message).
type Aborter interface {
	Abort() error
}

// abort ends c as its peer should see a broken stream: Abort when c has
// it, a reset for a TCP connection, else Close.
func abort(c net.Conn) {
	switch c := c.(type) {
	case Aborter:
		c.Abort()
	case *net.TCPConn:
		c.SetLinger(0)
		c.Close()
	default:
		c.Close()
	}
}

// abortGrace is how long the host's side of a broken stream stays open
// after the host was told, for the host to close it itself (so that its
// relay reads an error, not EOF) even when it is slow to hear, or frozen.
const abortGrace = 10 * time.Second

// join copies between the host's unix connection uc and the transport's
// stream conn in both directions and half-closes across, as [pipe.Join]
// does, then closes both.
//
// A stream that breaks (a read or write on conn fails before the host's
// side has ended, or the host's side fails) is handled apart: conn is
// aborted at once, the host is told (an event carrying t) and uc is left
// open for abortGrace, so that the host closes it itself and the relay
// using it ends both of its sides; an EOF on uc would only half-close the
// relay's client. Without a host taking events, uc is closed at once.
func (h *hub) join(t ticket, uc *net.UnixConn, conn net.Conn) {
	var (
		closing  atomic.Bool
		hostDone atomic.Bool
		done     = make(chan struct{})
	)
	closeBoth := func() {
		if closing.Swap(true) {
			return
		}
		uc.Close()
		conn.Close()
	}
	broken := func() {
		if closing.Swap(true) {
			return
		}
		abort(conn)
		if h.event(t) {
			time.AfterFunc(abortGrace, func() { uc.Close() })
			return
		}
		uc.Close()
	}
	stop := context.AfterFunc(h.ctx, closeBoth)
	defer stop()
	go func() { // the transport's stream to the host
		defer close(done)
		if _, err := pipe.Copy(uc, conn); err != nil {
			if hostDone.Load() {
				closeBoth() // the host's side ended: a write to it failed
			} else {
				broken()
			}
			return
		}
		if uc.CloseWrite() != nil {
			closeBoth()
		}
	}()
	// The host to the transport's stream.
	if _, err := pipe.Copy(conn, uc); err != nil {
		broken()
	} else {
		hostDone.Store(true)
		if cw, ok := conn.(sdk.CloseWriter); !ok || cw.CloseWrite() != nil {
			closeBoth()
		}
	}
	<-done
	closeBoth()
}

// Close stops taking claims and closes unclaimed streams. Streams already
// joined run on until they end or the process exits.
func (h *hub) Close() error {
	h.ln.Close()
	h.mu.Lock()
	var unclaimed []ticket
	for t, p := range h.pending {
		p.timer.Stop()
		p.conn.Close()
		unclaimed = append(unclaimed, t)
		delete(h.pending, t)
	}
	h.mu.Unlock()
	for _, t := range unclaimed {
		h.ended(t, false)
	}
	os.RemoveAll(h.dir)
	return nil
}

// claim dials the plugin's stream socket and presents t (host side). The
// returned *net.UnixConn is the stream.
func claim(ctx context.Context, path string, t []byte) (net.Conn, error) {
	if len(t) != ticketLen {
		return nil, fmt.Errorf("plugin: bad ticket length %d", len(t))
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(t); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
