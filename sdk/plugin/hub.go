package plugin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk/admission"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// ticketLen is the size of the secret a host presents to claim a stream.
const ticketLen = 16

// claimTimeout is how long a stream waits for its host to claim it.
const claimTimeout = 15 * time.Second

type ticket [ticketLen]byte

// hub runs in the plugin process. It holds streams the transport produced
// until the host claims them on a private unix socket, then joins each to
// its unix connection. Bytes thus cross the process boundary through the
// kernel (splice-capable on the host side), not through gRPC.
type hub struct {
	dir  string
	path string
	ln   *net.UnixListener

	mu      sync.Mutex
	pending map[ticket]*pendingStream
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	// onFail, when set, is called if the socket stops accepting claims for
	// good; Serve exits the plugin then, so that the host restarts it.
	onFail func(error)
}

type pendingStream struct {
	conn  net.Conn
	timer *time.Timer
}

func newHub(onFail func(error)) (*hub, error) {
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
	h := &hub{dir: dir, path: path, ln: ln, pending: map[ticket]*pendingStream{}, ctx: ctx, cancel: cancel, onFail: onFail}
	h.wg.Add(1)
	go h.serve()
	return h, nil
}

// put registers conn and returns the ticket that claims it. An unclaimed
// stream is closed after claimTimeout.
func (h *hub) put(conn net.Conn) (ticket, error) {
	var t ticket
	if _, err := rand.Read(t[:]); err != nil {
		return t, fmt.Errorf("plugin: ticket: %w", err)
	}
	h.mu.Lock()
	h.pending[t] = &pendingStream{conn: conn, timer: time.AfterFunc(claimTimeout, func() {
		if c := h.take(t); c != nil {
			c.Close()
		}
	})}
	h.mu.Unlock()
	return t, nil
}

func (h *hub) take(t ticket) net.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pending[t]
	if p == nil {
		return nil
	}
	delete(h.pending, t)
	p.timer.Stop()
	return p.conn
}

func (h *hub) serve() {
	defer h.wg.Done()
	log := pluginLogger()
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
			conn := h.take(t)
			if conn == nil {
				uc.Close()
				return
			}
			pipe.Join(h.ctx, uc, conn) // closes both when done
		}()
	}
}

// Close stops taking claims and closes unclaimed streams. Streams already
// joined run on until they end or the process exits.
func (h *hub) Close() error {
	h.ln.Close()
	h.mu.Lock()
	for t, p := range h.pending {
		p.timer.Stop()
		p.conn.Close()
		delete(h.pending, t)
	}
	h.mu.Unlock()
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
