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
// without a goodbye or stays silent past the heartbeat threshold, or when
// no control link came within the threshold: each instance has a timer,
// reset by every beat, that fires once it has been silent for the
// threshold. The places of streams the core closes are freed when it says
// so (StreamClosed); nothing polls sockets. A goodbye ('G') means
// the agent holds no stream any more: the instance is forgotten and
// nothing is closed.

// instance is one agent session of ours as an endpoint sees it. Guarded by
// endpoint.mu.
type instance struct {
	id      instanceID
	last    time.Time // last sign of life: a beat, or when it was registered
	ctl     net.Conn  // its control link, nil if none now
	streams map[*handedConn]struct{}
	// timer fires once the instance may have been silent for the
	// threshold (silent); every sign of life resets it, and forgetting
	// the instance stops it.
	timer *time.Timer
}

// instanceLocked returns instance id, registering it. ep.mu is held.
func (ep *endpoint) instanceLocked(id instanceID) *instance {
	in := ep.insts[id]
	if in == nil {
		in = &instance{id: id, last: time.Now(), streams: make(map[*handedConn]struct{})}
		in.timer = time.AfterFunc(ep.threshold, func() { ep.silent(in) })
		ep.insts[id] = in
	}
	return in
}

// aliveLocked records a sign of life of in. ep.mu is held.
func (ep *endpoint) aliveLocked(in *instance) {
	in.last = time.Now()
	in.timer.Reset(ep.threshold)
}

// silent runs when in's timer fires: it expires in if it has had no sign
// of life for the threshold (its control link frozen, or never there),
// and otherwise sets the timer again for the rest (a beat's Reset raced
// with the firing).
func (ep *endpoint) silent(in *instance) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.ctx.Err() != nil || ep.insts[in.id] != in {
		return
	}
	quiet := time.Since(in.last)
	if quiet < ep.threshold {
		in.timer.Reset(ep.threshold - quiet)
		return
	}
	ep.expireLocked(in, fmt.Errorf("no heartbeat for %v", quiet.Round(time.Millisecond)))
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
	in.ctl = c
	ep.aliveLocked(in)
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
					ep.aliveLocked(in)
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

// forgetLocked drops in without closing its streams, and stops its
// timer. ep.mu is held.
func (ep *endpoint) forgetLocked(in *instance) {
	in.timer.Stop()
	for h := range in.streams {
		h.inst = nil
	}
	in.streams = nil
	in.ctl = nil
	if ep.insts[in.id] == in {
		delete(ep.insts, in.id)
	}
}

// expireLocked closes every stream handed out for in, frees their places
// (the core's later StreamClosed for them is then ignored), and closes its
// control link: the agent is gone or frozen. ep.mu is held.
func (ep *endpoint) expireLocked(in *instance, why error) {
	n := len(in.streams)
	for h := range in.streams {
		h.raw.Close()
		delete(ep.handed, h.c)
		ep.links--
	}
	if in.ctl != nil {
		in.ctl.Close()
	}
	ep.forgetLocked(in)
	if n > 0 {
		ep.log.Info("agent gone or frozen: closing the streams handed out for it", "streams", n, "threshold", ep.threshold, "err", why)
	}
}
