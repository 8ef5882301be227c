//go:build !386

package quic

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	quicgo "github.com/quic-go/quic-go"
	"golang.org/x/net/ipv4"
)

// quic-go reads through ReadBatch only from an OOBCapablePacketConn that
// has it; a signature drift would silently lose GRO, so check both here.
var (
	_ quicgo.OOBCapablePacketConn = (*groConn)(nil)
	_ interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	} = (*groConn)(nil)
)

// udpGRO is Linux's UDP_GRO socket option (linux/udp.h): the kernel hands
// a run of same-sized datagrams from one sender over in one read, with
// their size in a control message of the same type.
const udpGRO = 104

// groMax is the most a coalesced read can carry: one UDP payload.
const groMax = 1<<16 - 1

// groBufs caches the buffers coalesced reads land in; a socket holds one
// only from a read until its datagrams are handed on, never while idle.
var groBufs = sync.Pool{New: func() any { b := make([]byte, groMax); return &b }}

// groConn is a UDP socket read with UDP GRO. quic-go reads a socket that
// has a ReadBatch method through it; groConn's ReadBatch splits each
// coalesced read back into datagrams, one per message, with the read's
// control messages (ECN, packet info) copied to each. Everything else is
// the embedded *net.UDPConn's, so quic-go still sends with GSO.
//
// Without GRO every datagram costs the kernel a socket-queue entry and
// quic-go a slot in a recvmmsg batch of 8; on loopback, a GSO send is also
// split up again before delivery. With it, a whole GSO send (up to 64 KiB)
// is one entry and one read.
type groConn struct {
	*net.UDPConn
	raw syscall.RawConn

	// The datagrams of the last coalesced read not yet handed on; only
	// quic-go's single reading goroutine touches them.
	buf  *[]byte // nil when none
	rest []byte
	seg  int
	from *net.UDPAddr
	oob  []byte         // the read's control messages without the GRO one
	last netip.AddrPort // from's address, to reuse it across reads

	// recvmsg's arguments and results, kept here so that a read
	// allocates nothing.
	recvFn func(fd uintptr) bool // c.recv
	hdr    syscall.Msghdr
	iov    syscall.Iovec
	sa     syscall.RawSockaddrAny
	oobb   [256]byte
	rbuf   *[]byte
	rn     int
	rerr   error
}

// withGRO turns UDP GRO on for c and returns c wrapped to read with it, or
// c itself when the kernel refuses (GRO arrived in Linux 5.0).
func withGRO(c *net.UDPConn) net.PacketConn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_UDP, udpGRO, 1)
	}); err != nil || serr != nil {
		return c
	}
	g := &groConn{UDPConn: c, raw: raw}
	g.recvFn = g.recv
	return g
}

// ReadBatch fills ms with datagrams, at least one, blocking until some
// arrive; it is what quic-go's reader calls. flags is ignored (quic-go
// passes 0).
func (c *groConn) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	for {
		if c.buf == nil {
			if err := c.read(); err != nil {
				return 0, err
			}
		}
		if n := c.fill(ms); n > 0 {
			return n, nil
		}
		// Every datagram of the read was dropped: read again.
	}
}

// fill hands pending datagrams on into ms and returns how many.
func (c *groConn) fill(ms []ipv4.Message) int {
	n := 0
	for n < len(ms) && len(c.rest) > 0 {
		d := c.rest[:min(c.seg, len(c.rest))]
		c.rest = c.rest[len(d):]
		m := &ms[n]
		if len(m.Buffers) == 0 || len(d) > len(m.Buffers[0]) {
			continue // larger than quic-go reads: dropped, as a truncated datagram would be
		}
		m.N = copy(m.Buffers[0], d)
		m.NN = copy(m.OOB, wholeCmsgs(c.oob, len(m.OOB)))
		m.Flags = 0
		m.Addr = c.from
		n++
	}
	if len(c.rest) == 0 {
		groBufs.Put(c.buf)
		c.buf, c.rest = nil, nil
	}
	return n
}

// read waits for the socket to be readable, then reads one (possibly
// coalesced) datagram into a pooled buffer.
func (c *groConn) read() error {
	c.rerr, c.rbuf = nil, nil
	err := c.raw.Read(c.recvFn)
	if err == nil && c.rerr != nil {
		err = &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: os.NewSyscallError("recvmsg", c.rerr)}
	}
	if err != nil {
		if c.rbuf != nil {
			groBufs.Put(c.rbuf)
		}
		return err
	}
	bp, n := c.rbuf, c.rn
	seg, oob := splitGRO(c.oobb[:c.hdr.Controllen], c.oobb[:0])
	if seg <= 0 || seg > n || c.hdr.Flags&syscall.MSG_TRUNC != 0 {
		seg = n
	}
	c.buf, c.rest, c.seg, c.oob = bp, (*bp)[:n], seg, oob
	c.from = c.addr()
	return nil
}

// recv is c.recvFn, the raw.Read callback: one non-blocking recvmsg into a
// pooled buffer, taken only now that the socket is readable, with no
// allocation (syscall.Recvmsg allocates the sender's address).
func (c *groConn) recv(fd uintptr) bool {
	bp := groBufs.Get().(*[]byte)
	c.iov.Base = &(*bp)[0]
	c.iov.SetLen(len(*bp))
	c.hdr = syscall.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&c.sa)),
		Namelen: syscall.SizeofSockaddrAny,
		Iov:     &c.iov,
		Control: &c.oobb[0],
	}
	c.hdr.SetControllen(len(c.oobb))
	c.hdr.Iovlen = 1
	for {
		r, _, e := syscall.Syscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&c.hdr)), 0)
		switch e {
		case 0:
			c.rbuf, c.rn = bp, int(r)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			groBufs.Put(bp)
			return false
		}
		groBufs.Put(bp)
		c.rerr = e
		return true
	}
}

// addr returns the sender of the last read as a *net.UDPAddr, the same one
// as for the previous read when the sender is the same (quic-go only reads
// it).
func (c *groConn) addr() *net.UDPAddr {
	var ap netip.AddrPort
	switch c.sa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&c.sa))
		ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&c.sa))
		ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), ntohs(sa.Port))
	default:
		return nil
	}
	if c.from == nil || ap != c.last {
		c.last = ap
		c.from = net.UDPAddrFromAddrPort(ap)
	}
	return c.from
}

// ntohs reads a port as the kernel stores it (network byte order).
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// splitGRO returns the datagram size a UDP_GRO control message in oob
// announces (0 when there is none) and the other control messages,
// appended to dst (which may share oob's array: it never overtakes it).
func splitGRO(oob, dst []byte) (seg int, rest []byte) {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(oob) {
			break
		}
		space := cmsgAlign(l)
		if space > len(oob) {
			space = len(oob)
		}
		if h.Level == syscall.IPPROTO_UDP && h.Type == udpGRO && l >= syscall.SizeofCmsghdr+4 {
			seg = int(*(*int32)(unsafe.Pointer(&oob[cmsgAlign(syscall.SizeofCmsghdr)])))
		} else {
			dst = append(dst, oob[:space]...)
		}
		oob = oob[space:]
	}
	return seg, dst
}

// wholeCmsgs returns the longest prefix of oob, a run of well-formed
// control messages (splitGRO's output), that is whole messages and at most
// n bytes: quic-go fails its whole socket on a message cut in two.
func wholeCmsgs(oob []byte, n int) []byte {
	if len(oob) <= n {
		return oob
	}
	end := 0
	for end+syscall.SizeofCmsghdr <= len(oob) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[end]))
		next := end + min(cmsgAlign(int(h.Len)), len(oob)-end)
		if int(h.Len) < syscall.SizeofCmsghdr || next > n {
			break
		}
		end = next
	}
	return oob[:end]
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}
