//go:build !386

package quic

import (
	"bytes"
	"encoding/binary"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
)

// udpSegment is Linux's UDP_SEGMENT (GSO) option and control message.
const udpSegment = 103

// gsoOOB is a UDP_SEGMENT control message: send b as datagrams of size.
func gsoOOB(size uint16) []byte {
	b := make([]byte, syscall.CmsgSpace(2))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = syscall.IPPROTO_UDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[syscall.CmsgLen(0):], size)
	return b
}

func groPair(t *testing.T) (rx *groConn, tx *net.UDPConn) {
	t.Helper()
	r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	g, ok := withGRO(r).(*groConn)
	if !ok {
		t.Skip("the kernel refuses UDP_GRO")
	}
	tx, err = net.DialUDP("udp", nil, r.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	return g, tx
}

func messages(n, size int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
		ms[i].OOB = make([]byte, 128)
	}
	return ms
}

// TestGROSplitsCoalescedRead sends 10 datagrams of 1000 bytes and a last
// one of 300 in one GSO send; the GRO reader must hand them on one by one,
// in order, in batches of at most len(ms), all from the sender's address.
func TestGROSplitsCoalescedRead(t *testing.T) {
	rx, tx := groPair(t)
	payload := make([]byte, 10*1000+300)
	for i := range payload {
		payload[i] = byte(i / 1000)
	}
	if _, _, err := tx.WriteMsgUDP(payload, gsoOOB(1000), nil); err != nil {
		t.Skipf("GSO send refused: %v", err)
	}
	ms := messages(8, 1452)
	var got [][]byte
	for len(got) < 11 {
		n, err := rx.ReadBatch(ms, 0)
		if err != nil {
			t.Fatalf("ReadBatch after %d datagrams: %v", len(got), err)
		}
		if n < 1 || n > len(ms) {
			t.Fatalf("ReadBatch returned %d messages, want 1..%d", n, len(ms))
		}
		if len(got) == 0 && (n != len(ms) || len(rx.rest) != 2300) {
			t.Fatalf("first ReadBatch: %d datagrams and %d bytes pending, want %d and 2300 (one coalesced read)", n, len(rx.rest), len(ms))
		}
		for _, m := range ms[:n] {
			if m.Addr.String() != tx.LocalAddr().String() {
				t.Fatalf("datagram from %v, want %v", m.Addr, tx.LocalAddr())
			}
			got = append(got, bytes.Clone(m.Buffers[0][:m.N]))
		}
	}
	if len(got) != 11 {
		t.Fatalf("got %d datagrams, want 11", len(got))
	}
	for i, d := range got {
		want := 1000
		if i == 10 {
			want = 300
		}
		if len(d) != want || d[0] != byte(i) || d[len(d)-1] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes of %d", i, len(d), d[0], want, i)
		}
	}
}

// TestGROPlainDatagrams checks that datagrams sent one by one arrive one
// by one, and that one larger than quic-go's buffers is dropped, not cut.
func TestGROPlainDatagrams(t *testing.T) {
	rx, tx := groPair(t)
	for _, d := range [][]byte{bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 2000), bytes.Repeat([]byte{3}, 50)} {
		if _, err := tx.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	ms := messages(8, 1452)
	var got []int
	for len(got) < 2 {
		n, err := rx.ReadBatch(ms, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[:n] {
			got = append(got, m.N)
			if m.Buffers[0][0] == 2 {
				t.Fatal("the 2000-byte datagram was handed on")
			}
		}
	}
	if got[0] != 100 || got[1] != 50 {
		t.Fatalf("got datagrams of %v bytes, want [100 50]", got)
	}
}

// TestGROReadDeadline checks that a read deadline (quic-go's way to stop
// its reader) ends a blocked ReadBatch with a timeout.
func TestGROReadDeadline(t *testing.T) {
	rx, _ := groPair(t)
	rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := rx.ReadBatch(messages(8, 1452), 0)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("ReadBatch = %v, want a timeout", err)
	}
}

// TestSplitGRO keeps every control message but the GRO one.
func TestSplitGRO(t *testing.T) {
	seg := make([]byte, syscall.CmsgSpace(4))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&seg[0]))
	h.Level, h.Type = syscall.IPPROTO_UDP, udpGRO
	h.SetLen(syscall.CmsgLen(4))
	binary.NativeEndian.PutUint32(seg[syscall.CmsgLen(0):], 1200)
	tos := make([]byte, syscall.CmsgSpace(1))
	h = (*syscall.Cmsghdr)(unsafe.Pointer(&tos[0]))
	h.Level, h.Type = syscall.IPPROTO_IP, syscall.IP_TOS
	h.SetLen(syscall.CmsgLen(1))
	tos[syscall.CmsgLen(0)] = 2
	oob := append(append([]byte{}, tos...), seg...)
	oob = append(oob, tos...)
	n, rest := splitGRO(oob, oob[:0])
	if n != 1200 {
		t.Fatalf("segment size %d, want 1200", n)
	}
	if want := append(append([]byte{}, tos...), tos...); !bytes.Equal(rest, want) {
		t.Fatalf("other control messages % x, want % x", rest, want)
	}
	if n, rest := splitGRO([]byte{1, 2, 3}, nil); n != 0 || len(rest) != 0 {
		t.Fatalf("short input: %d, % x", n, rest)
	}
}

// FuzzSplitGRO: any control-message bytes: no panic, the messages kept
// are never more than were given, and wholeCmsgs keeps to its limit.
func FuzzSplitGRO(f *testing.F) {
	seg := make([]byte, syscall.CmsgSpace(4))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&seg[0]))
	h.Level, h.Type = syscall.IPPROTO_UDP, udpGRO
	h.SetLen(syscall.CmsgLen(4))
	f.Add(seg)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, oob []byte) {
		_, rest := splitGRO(oob, nil)
		if len(rest) > len(oob) {
			t.Fatalf("kept %d bytes of %d", len(rest), len(oob))
		}
		if w := wholeCmsgs(rest, 128); len(w) > 128 || len(w) > len(rest) {
			t.Fatalf("wholeCmsgs kept %d bytes of %d, limit 128", len(w), len(rest))
		}
	})
}

// TestWholeCmsgs: control messages handed to quic-go are never cut in two.
func TestWholeCmsgs(t *testing.T) {
	one := make([]byte, syscall.CmsgSpace(12)) // 32 bytes on 64-bit
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&one[0]))
	h.Level, h.Type = syscall.IPPROTO_IP, syscall.IP_PKTINFO
	h.SetLen(syscall.CmsgLen(12))
	three := append(append(append([]byte{}, one...), one...), one...)
	for _, n := range []int{0, len(one) - 1, len(one), 2*len(one) + 5, len(three), 200} {
		got := wholeCmsgs(three, n)
		want := min(n/len(one), 3) * len(one)
		if len(got) != want {
			t.Errorf("wholeCmsgs(3 messages, %d) kept %d bytes, want %d", n, len(got), want)
		}
	}
}
