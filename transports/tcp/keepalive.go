package tcp

import (
	"net"
	"time"
)

// tuneLiveness makes the kernel notice a dead peer on an idle link within
// about threshold, also once the link is bound and carries no heartbeats:
// TCP keepalive probes start after a third of it, three probes a sixth
// apart. It does not notice a peer that is alive but silent (a stuck
// middlebox that still ACKs). TCP_USER_TIMEOUT is deliberately not set:
// Linux applies it to zero-window probing too, which would abort a link
// whose public client merely stopped reading for a while.
func tuneLiveness(c net.Conn, threshold time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok || threshold <= 0 {
		return
	}
	tc.SetKeepAliveConfig(net.KeepAliveConfig{
		Enable:   true,
		Idle:     max(threshold/3, time.Second),
		Interval: max(threshold/6, time.Second),
		Count:    3,
	})
}
