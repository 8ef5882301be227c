package tcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Liveness of bound streams of our agents (protocol version 2).
//
// Once bound, a link of ours is a bare byte pipe: it carries no heartbeat,
// and a frozen agent (SIGSTOP, a hung host behind a NAT that still ACKs)
// keeps its TCP connections alive. So every agent session names itself
// with an instance id in its hellos and keeps one control link that is
// never bound and beats. The endpoint records, per instance, the streams it
// handed out, and closes them all when the instance's control link closes
// without a goodbye or stays silent past the heartbeat threshold (the
// sweeper also expires an instance that never got a control link within
// the threshold). A goodbye ('G') means the agent holds no stream any more:
// the instance is forgotten and nothing is closed.

// instance is one agent session of ours as an endpoint sees it. Guarded by
// endpoint.mu.
type instance struct {
	id      instanceID
	last    time.Time // last sign of life: a beat, or when it was registered
	ctl     net.Conn  // its control link, nil if none now
	streams map[*handedConn]struct{}
}

// instanceLocked returns instance id, registering it. ep.mu is held.
func (ep *endpoint) instanceLocked(id instanceID) *instance {
	in := ep.insts[id]
	if in == nil {
		in = &instance{id: id, last: time.Now(), streams: make(map[*handedConn]struct{})}
		ep.insts[id] = in
	}
	return in
}

// maxControls caps the control links of one endpoint. They do not count
// against MaxLinks (a private side allows one link, and its agent needs a
// control link besides), but each needs the passcode and one per agent
// session is enough.
func (ep *endpoint) maxControls() int {
	if ep.cfg.MaxLinks > 0 {
		return 2*ep.cfg.MaxLinks + 16
	}
	return 1024
}

func (ep *endpoint) reserveControl() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.controls >= ep.maxControls() {
		return false
	}
	ep.controls++
	return true
}

func (ep *endpoint) releaseControl() {
	ep.mu.Lock()
	ep.controls--
	ep.mu.Unlock()
}

// unreserve gives back what admit reserved for a link in role.
func (ep *endpoint) unreserve(role byte) {
	if role == roleControl {
		ep.releaseControl()
		return
	}
	ep.release()
}

// serveControl runs the control link c of instance id until it ends: it
// echoes beats and records them as signs of life. A replaced control link
// (the agent redialled) ends quietly.
func (ep *endpoint) serveControl(c net.Conn, id instanceID, log *slog.Logger) {
	defer ep.releaseControl()
	stop := context.AfterFunc(ep.ctx, func() { c.Close() })
	defer stop()
	ep.mu.Lock()
	in := ep.instanceLocked(id)
	old := in.ctl
	in.ctl, in.last = c, time.Now()
	ep.mu.Unlock()
	if old != nil {
		old.Close()
	}
	var b [1]byte
	for {
		c.SetReadDeadline(time.Now().Add(ep.threshold))
		_, err := c.Read(b[:])
		if err == nil {
			switch b[0] {
			case frameBeat:
				ep.mu.Lock()
				if in.ctl == c {
					in.last = time.Now()
				}
				ep.mu.Unlock()
				c.SetWriteDeadline(time.Now().Add(ep.threshold))
				_, err = c.Write(b[:])
			case frameBye:
				ep.mu.Lock()
				if in.ctl == c {
					ep.forgetLocked(in)
				}
				ep.mu.Unlock()
				c.Close()
				log.Debug("agent instance said goodbye")
				return
			default:
				err = fmt.Errorf("%w: frame %q on a control link", ErrProtocol, b[0])
			}
		}
		if err != nil {
			c.Close()
			if ep.ctx.Err() != nil {
				return
			}
			ep.mu.Lock()
			if in.ctl == c {
				ep.expireLocked(in, fmt.Errorf("control link ended: %w", err))
			}
			ep.mu.Unlock()
			return
		}
	}
}

// trackLocked records h as handed out for instance id. ep.mu is held.
func (ep *endpoint) trackLocked(h *handedConn, id instanceID) {
	in := ep.instanceLocked(id)
	h.inst = in
	in.streams[h] = struct{}{}
}

// forgetLocked drops in without closing its streams. ep.mu is held.
func (ep *endpoint) forgetLocked(in *instance) {
	for h := range in.streams {
		h.inst = nil
	}
	in.streams = nil
	in.ctl = nil
	if ep.insts[in.id] == in {
		delete(ep.insts, in.id)
	}
}

// expireLocked closes every stream handed out for in, and its control
// link: the agent is gone or frozen. The sweeper then frees their places.
// ep.mu is held.
func (ep *endpoint) expireLocked(in *instance, why error) {
	n := len(in.streams)
	for h := range in.streams {
		h.raw.Close()
	}
	if in.ctl != nil {
		in.ctl.Close()
	}
	ep.forgetLocked(in)
	if n > 0 {
		ep.log.Info("agent gone or frozen: closing the streams handed out for it", "streams", n, "threshold", ep.threshold, "err", why)
	}
}

// sweepInstancesLocked expires instances silent past the threshold (their
// control link frozen, or never there) and forgets those with nothing left
// to watch. ep.mu is held.
func (ep *endpoint) sweepInstancesLocked(now time.Time) {
	for _, in := range ep.insts {
		switch {
		case now.Sub(in.last) > ep.threshold:
			ep.expireLocked(in, fmt.Errorf("no heartbeat for %v", now.Sub(in.last).Round(time.Millisecond)))
		case in.ctl == nil && len(in.streams) == 0:
			ep.forgetLocked(in)
		}
	}
}
