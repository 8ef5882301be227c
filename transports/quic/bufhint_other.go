//go:build !linux

package quic

import "net"

// wantBuffer is the UDP socket buffer quic-go asks for (7 MiB).
const wantBuffer = 7 << 20

// setBuffers raises pc's socket buffers to wantBuffer. Only Linux reports
// what it granted; elsewhere it returns wantBuffer.
func setBuffers(pc *net.UDPConn) (rcv, snd int) {
	pc.SetReadBuffer(wantBuffer)
	pc.SetWriteBuffer(wantBuffer)
	return wantBuffer, wantBuffer
}
