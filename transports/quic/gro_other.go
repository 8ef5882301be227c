//go:build !linux || 386

package quic

import "net"

// withGRO returns c: UDP GRO is Linux's (and not wired up on 386,
// where recvmsg goes through socketcall).
func withGRO(c *net.UDPConn) net.PacketConn { return c }
