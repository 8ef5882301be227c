//go:build !linux

package quic

import (
	"log/slog"
	"net"
)

// bufferHint raises pc's socket buffers to what quic-go wants (7 MiB).
// Only Linux reports what it granted, so only there is a hint logged.
func bufferHint(pc *net.UDPConn, log *slog.Logger) {
	pc.SetReadBuffer(7 << 20)
	pc.SetWriteBuffer(7 << 20)
}
