package quic

import (
	"net"
	"syscall"
)

// wantBuffer is the UDP socket buffer quic-go asks for (7 MiB).
const wantBuffer = 7 << 20

// setBuffers raises pc's socket buffers to wantBuffer and returns what the
// kernel granted. The kernel caps a plain request at net.core.rmem_max /
// wmem_max; a process allowed to exceed them (CAP_NET_ADMIN, as the daemon
// running as root) then gets the full size with SO_RCVBUFFORCE /
// SO_SNDBUFFORCE. The size is a limit on queued bytes, not an allocation.
func setBuffers(pc *net.UDPConn) (rcv, snd int) {
	pc.SetReadBuffer(wantBuffer)
	pc.SetWriteBuffer(wantBuffer)
	raw, err := pc.SyscallConn()
	if err != nil {
		return 0, 0
	}
	raw.Control(func(fd uintptr) {
		rcv, snd = granted(int(fd))
		if rcv < wantBuffer {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, wantBuffer)
		}
		if snd < wantBuffer {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, wantBuffer)
		}
		rcv, snd = granted(int(fd))
	})
	return rcv, snd
}

// granted returns fd's buffer sizes as requested: Linux reports twice the
// size it grants (the rest is its bookkeeping).
func granted(fd int) (rcv, snd int) {
	r, _ := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	s, _ := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	return r / 2, s / 2
}
