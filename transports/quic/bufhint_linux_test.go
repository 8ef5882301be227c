package quic

import (
	"net"
	"syscall"
	"testing"
)

// TestSetBuffers checks that setBuffers reports what the kernel granted
// and, where the process may exceed net.core.rmem_max/wmem_max
// (CAP_NET_ADMIN, as root), that it got the full size.
func TestSetBuffers(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rcv, snd := setBuffers(pc)
	raw, err := pc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var r, s int
	raw.Control(func(fd uintptr) { r, s = granted(int(fd)) })
	if r != rcv || s != snd || rcv <= 0 || snd <= 0 {
		t.Fatalf("setBuffers = %d, %d; the socket has %d, %d", rcv, snd, r, s)
	}
	// Can this process force sizes past the limits? Try on a socket of
	// its own.
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	praw, _ := probe.SyscallConn()
	var ferr error
	praw.Control(func(fd uintptr) {
		ferr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, wantBuffer)
	})
	if ferr != nil {
		t.Skipf("this process may not exceed the kernel's buffer limits (%v); got %d/%d", ferr, rcv, snd)
	}
	if rcv < wantBuffer || snd < wantBuffer {
		t.Fatalf("setBuffers = %d, %d; want at least %d each with SO_*BUFFORCE allowed", rcv, snd, wantBuffer)
	}
}
