package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
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

	acked  chan struct{} // closed by the reader on the agent's ack (before version 4)
	dead   chan struct{} // closed by the reader when the link dies unbound
	parked chan struct{} // closed by the reader once it stopped reading for a version 4 bind

	// From version 4 the connector beats an idle link and the agent
	// echoes, so that the connector knows when no agent byte is in flight
	// and can bind without an acknowledgement. Guarded by mu.
	beat    *time.Timer // sends the next beat
	pending bool        // a beat was sent and its echo has not come back
}

// noAck reports whether the link's agent takes a bind without
// acknowledging it (version 4).
func (l *poolLink) noAck() bool { return l.version >= protocolV4 }

// beatInterval is how often the connector beats an idle version 4 link:
// a quarter of the threshold, at least minBeatInterval (what our agents
// use on older links).
func (l *poolLink) beatInterval() time.Duration {
	return max(l.ep.threshold/4, minBeatInterval)
}

// startBeats starts beating an idle version 4 link.
func (l *poolLink) startBeats() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.beat = time.AfterFunc(l.beatInterval(), l.sendBeat)
}

// sendBeat writes one beat to an idle link whose last beat was echoed.
// A write that fails wakes the reader, which drops the link.
func (l *poolLink) sendBeat() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != linkIdle {
		return
	}
	if !l.pending {
		l.pending = true
		l.conn.SetWriteDeadline(time.Now().Add(l.ep.threshold))
		if _, err := l.conn.Write([]byte{frameBeat}); err != nil {
			l.conn.SetReadDeadline(time.Unix(1, 0))
			return
		}
	}
	l.beat.Reset(l.beatInterval())
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
		l.mu.Lock()
		if l.state == linkBinding && l.noAck() && !l.pending {
			// bind takes the link over: no agent byte is in flight
			// (no beat echo is due), and the agent sends none before
			// it reads the bind.
			l.mu.Unlock()
			close(l.parked)
			return
		}
		l.conn.SetReadDeadline(time.Now().Add(l.ep.threshold))
		l.mu.Unlock()
		_, err := l.conn.Read(b[:])
		if err == nil {
			switch b[0] {
			case frameBeat:
				l.mu.Lock()
				switch {
				case l.noAck():
					// The echo of our beat.
					l.pending = false
				case l.state == linkIdle:
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
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			l.mu.Lock()
			binding := l.state == linkBinding && l.noAck() && !l.pending
			l.mu.Unlock()
			if binding {
				close(l.parked)
				return
			}
		}
		if err != nil {
			l.kill()
			l.stopBeats()
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

// bind tells the agent a client is bound and, before version 4, waits
// for its ack. errSkip means the link was unusable and another should be
// tried.
func (l *poolLink) bind(ctx context.Context) (net.Conn, error) {
	if l.noAck() {
		return l.bindNoAck(ctx)
	}
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

// stopBeats stops the beats of a version 4 link.
func (l *poolLink) stopBeats() {
	l.mu.Lock()
	if l.beat != nil {
		l.beat.Stop()
	}
	l.mu.Unlock()
}

// bindNoAck binds a version 4 link: it stops the link's beats and its
// reader (once the echo of a beat in flight, if any, came back; a past
// read deadline wakes the reader), writes the bind frame and hands the
// link out at once. The agent sends bytes on an idle link only to echo a
// beat, and none after the bind but its service's, so nothing of the
// service can be lost to the reader nor a beat reach the caller.
func (l *poolLink) bindNoAck(ctx context.Context) (net.Conn, error) {
	l.mu.Lock()
	if l.state != linkIdle {
		l.mu.Unlock()
		return nil, errSkip
	}
	l.state = linkBinding
	l.beat.Stop()
	if !l.pending {
		l.conn.SetReadDeadline(time.Unix(1, 0))
	}
	l.mu.Unlock()
	t := time.NewTimer(l.ep.tcfg.BindTimeout)
	defer t.Stop()
	select {
	case <-l.parked:
	case <-l.dead:
		return nil, errSkip
	case <-t.C:
		// The echo of the last beat did not come back: drop the link
		// (its reader frees it).
		l.ep.log.Info("agent did not echo a beat on a link being bound; dropping the link", sdk.AttrPeer, l.conn.RemoteAddr().String(), "err", ErrBindTimeout)
		l.kill()
		return nil, errSkip
	}
	// The reader is gone: this goroutine owns the link and its place.
	o, hasOrigin := sdk.OriginFrom(ctx)
	var frame [2 + sdk.MaxOriginLen]byte
	l.conn.SetDeadline(time.Now().Add(l.ep.tcfg.BindTimeout))
	_, err := l.conn.Write(appendBind(frame[:0], l.version, o, hasOrigin))
	l.conn.SetDeadline(time.Time{})
	l.mu.Lock()
	l.state = linkBound
	l.mu.Unlock()
	if err != nil {
		l.conn.Close()
		l.ep.release()
		return nil, errSkip
	}
	l.ep.hand(l.conn, l.inst)
	return l.conn, nil
}

var _ item = (*poolLink)(nil)
