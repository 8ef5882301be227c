package quic

import (
	"log/slog"
	"net"
	"syscall"
)

// wantBuffer is the UDP socket buffer quic-go asks for (7 MiB).
const wantBuffer = 7 << 20

// bufferHint raises pc's socket buffers to what quic-go wants and, when the
// kernel caps them lower, logs how to lift the cap. Linux reports twice the
// size it grants.
func bufferHint(pc *net.UDPConn, log *slog.Logger) {
	pc.SetReadBuffer(wantBuffer)
	pc.SetWriteBuffer(wantBuffer)
	raw, err := pc.SyscallConn()
	if err != nil {
		return
	}
	var rcv, snd int
	raw.Control(func(fd uintptr) {
		rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	if rcv/2 < wantBuffer || snd/2 < wantBuffer {
		log.Warn("the kernel limits UDP socket buffers below what QUIC needs for high throughput; raise the limits: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000",
			"rcvbuf", rcv/2, "sndbuf", snd/2, "want", wantBuffer)
	}
}
