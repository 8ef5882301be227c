package tcp

import (
	"net"
	"syscall"
	"unsafe"
)

// poll(2) event bits (the same on every Linux architecture Go supports
// except sparc64, which Go does not).
const (
	pollErr   = 0x8
	pollHup   = 0x10
	pollRdHup = 0x2000
)

type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// peerHungUp reports whether the peer of the socket c closed its side or
// reset the connection, even when bytes it sent before are still unread
// (POLLRDHUP). It never blocks and never reads.
func peerHungUp(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var hung bool
	err = rc.Control(func(fd uintptr) {
		p := pollFd{fd: int32(fd), events: pollRdHup}
		var ts syscall.Timespec // zero: poll without waiting
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		hung = errno == 0 && n == 1 && p.revents&(pollRdHup|pollHup|pollErr) != 0
	})
	return err == nil && hung
}
