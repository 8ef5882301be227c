package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// errSkip tells Open to try the next idle link.
var errSkip = errors.New("tcp: link unusable")

// States of a pool link.
const (
	linkIdle = iota
	linkBinding
	linkBound
	linkDead
)

// poolLink is an idle link of ours on the connector side. Its reader (run
// by the admitting goroutine) answers heartbeats and enforces the
// heartbeat threshold until the link is bound or dies.
type poolLink struct {
	ep   *endpoint
	conn net.Conn
	inst *instanceID // the agent instance, nil for protocol version 1
	// version is the link's protocol version: from protocolV3 on, the
	// bind frame carries the client's origin.
	version byte

	mu    sync.Mutex // guards state and every write while framed
	state int
	taken bool

	acked chan struct{} // closed by the reader on the agent's ack
	dead  chan struct{} // closed by the reader when the link dies unbound
}

func (l *poolLink) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != linkIdle || l.taken {
		return false
	}
	l.taken = true
	return true
}

// close kills an idle link at endpoint shutdown; the reader frees it.
func (l *poolLink) close() { l.kill() }

// kill closes the link unless it is bound, and reports whether it did.
func (l *poolLink) kill() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == linkBound {
		return false
	}
	l.state = linkDead
	l.conn.Close()
	return true
}

// read is the idle link's reader. It returns once the link is bound or
// dead.
func (l *poolLink) read() {
	var b [1]byte
	for {
		l.conn.SetReadDeadline(time.Now().Add(l.ep.threshold))
		_, err := l.conn.Read(b[:])
		if err == nil {
			switch b[0] {
			case frameBeat:
				l.mu.Lock()
				if l.state == linkIdle {
					l.conn.SetWriteDeadline(time.Now().Add(l.ep.threshold))
					_, err = l.conn.Write(b[:])
				}
				l.mu.Unlock()
			case frameAck:
				l.mu.Lock()
				if l.state == linkBinding {
					l.state = linkBound
					l.conn.SetDeadline(time.Time{})
					l.mu.Unlock()
					close(l.acked)
					return
				}
				l.mu.Unlock()
				err = fmt.Errorf("%w: ack on a link not being bound", ErrProtocol)
			default:
				err = fmt.Errorf("%w: frame %q on an idle link", ErrProtocol, b[0])
			}
		}
		if err != nil {
			l.kill()
			l.ep.idle.remove(l)
			l.ep.release()
			close(l.dead)
			if l.ep.ctx.Err() == nil {
				l.ep.log.Debug("idle agent link closed", sdk.AttrPeer, l.conn.RemoteAddr().String(), "err", err)
			}
			return
		}
	}
}

// bind tells the agent a client is bound and waits for its ack. errSkip
// means the link was unusable and another should be tried.
func (l *poolLink) bind(ctx context.Context) (net.Conn, error) {
	l.mu.Lock()
	if l.state != linkIdle {
		l.mu.Unlock()
		return nil, errSkip
	}
	l.state = linkBinding
	o, hasOrigin := sdk.OriginFrom(ctx)
	if hasOrigin && l.version < protocolV3 {
		l.ep.noOrigin(ctx, &l.ep.warnedOld, "an agent of a release before protocol version 3")
	}
	l.conn.SetWriteDeadline(time.Now().Add(l.ep.tcfg.BindTimeout))
	_, err := l.conn.Write(appendBind(make([]byte, 0, 2+sdk.MaxOriginLen), l.version, o, hasOrigin))
	l.conn.SetWriteDeadline(time.Time{})
	l.mu.Unlock()
	if err != nil {
		l.kill()
		return nil, errSkip
	}
	t := time.NewTimer(l.ep.tcfg.BindTimeout)
	defer t.Stop()
	var fail error
	select {
	case <-l.acked:
		l.ep.hand(l.conn, l.inst)
		return l.conn, nil
	case <-l.dead:
		return nil, errSkip
	case <-t.C:
		l.ep.log.Info("agent did not acknowledge a bind; dropping the link", sdk.AttrPeer, l.conn.RemoteAddr().String(), "err", ErrBindTimeout)
		fail = errSkip
	case <-ctx.Done():
		fail = ctx.Err()
	case <-l.ep.ctx.Done():
		fail = fmt.Errorf("tcp: open: %w", sdk.ErrClosed)
	}
	if !l.kill() {
		// Acked meanwhile, but nobody will use it now.
		l.conn.Close()
		l.ep.release()
	}
	return nil, fail
}

var _ item = (*poolLink)(nil)
