package pipe

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpPair returns the two ends of one loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

// relayed returns two endpoints whose bytes cross a Join of two sockets,
// and a channel with Join's outcome.
func relayed(t testing.TB, ctx context.Context, pair func(testing.TB) (net.Conn, net.Conn)) (left, right net.Conn, done <-chan joinOutcome) {
	t.Helper()
	left, a := pair(t)
	b, right := pair(t)
	ch := make(chan joinOutcome, 1)
	go func() {
		res, err := Join(ctx, a, b)
		ch <- joinOutcome{res, err}
	}()
	return left, right, ch
}

type joinOutcome struct {
	res Result
	err error
}

func watchdog(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { panic("test " + t.Name() + " hung") })
	t.Cleanup(func() { timer.Stop() })
}

func memPair(t testing.TB) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestJoinCarriesBothDirectionsAndHalfClose(t *testing.T) {
	watchdog(t, time.Minute)
	for _, tt := range []struct {
		name string
		pair func(testing.TB) (net.Conn, net.Conn)
	}{
		{"tcp-splice", tcpPair},
	} {
		t.Run(tt.name, func(t *testing.T) {
			left, right, done := relayed(t, context.Background(), tt.pair)
			up := make([]byte, 4<<20)
			down := make([]byte, 3<<20)
			rand.Read(up)
			rand.Read(down)

			var wg sync.WaitGroup
			var gotAtRight, gotAtLeft []byte
			var errR, errL error
			wg.Add(2)
			go func() {
				defer wg.Done()
				gotAtRight, errR = io.ReadAll(right) // ends at the FIN left sends
				if errR == nil {
					_, errR = right.Write(down) // still writable after its read side got EOF
				}
				if errR == nil {
					errR = right.(*net.TCPConn).CloseWrite()
				}
			}()
			go func() {
				defer wg.Done()
				if _, errL = left.Write(up); errL != nil {
					return
				}
				if errL = left.(*net.TCPConn).CloseWrite(); errL != nil {
					return
				}
				gotAtLeft, errL = io.ReadAll(left)
			}()
			wg.Wait()
			if errR != nil || errL != nil {
				t.Fatalf("right: %v, left: %v", errR, errL)
			}
			if sha256.Sum256(gotAtRight) != sha256.Sum256(up) {
				t.Errorf("right got %d bytes, not the %d sent", len(gotAtRight), len(up))
			}
			if sha256.Sum256(gotAtLeft) != sha256.Sum256(down) {
				t.Errorf("left got %d bytes, not the %d sent", len(gotAtLeft), len(down))
			}
			out := <-done
			if out.err != nil {
				t.Errorf("Join error = %v", out.err)
			}
			if out.res.AToB != int64(len(up)) || out.res.BToA != int64(len(down)) {
				t.Errorf("Join counted %+v, want %d and %d", out.res, len(up), len(down))
			}
		})
	}
}

func TestJoinNonSocketStreams(t *testing.T) {
	watchdog(t, time.Minute)
	// net.Pipe has no half-close, so the first EOF ends the relay.
	left, right, done := relayed(t, context.Background(), memPair)
	msg := bytes.Repeat([]byte("iofog"), 100000)
	go func() {
		left.Write(msg)
		left.Close()
	}()
	got, err := io.ReadAll(right)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes, want %d", len(got), len(msg))
	}
	if out := <-done; out.res.AToB != int64(len(msg)) {
		t.Errorf("AToB = %d, want %d", out.res.AToB, len(msg))
	}
}

func TestJoinSocketToNonSocket(t *testing.T) {
	watchdog(t, time.Minute)
	left, a := tcpPair(t)
	b, right := memPair(t)
	done := make(chan joinOutcome, 1)
	go func() {
		res, err := Join(context.Background(), a, b)
		done <- joinOutcome{res, err}
	}()
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	go func() {
		left.Write(msg)
		left.(*net.TCPConn).CloseWrite()
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(right, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("bytes differ")
	}
	// The EOF on left reaches the net.Pipe side as a close, ending the relay.
	if out := <-done; out.res.AToB != int64(len(msg)) || out.err != nil {
		t.Errorf("Join = %+v, %v", out.res, out.err)
	}
}

func TestJoinResetClosesOtherSide(t *testing.T) {
	watchdog(t, time.Minute)
	left, right, done := relayed(t, context.Background(), tcpPair)
	left.(*net.TCPConn).SetLinger(0)
	left.Close() // RST
	buf := make([]byte, 1)
	right.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := right.Read(buf); err == nil {
		t.Fatal("read on the far side succeeded after the near side was reset")
	}
	<-done
}

func TestJoinContextCancelClosesBoth(t *testing.T) {
	watchdog(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	left, right, done := relayed(t, ctx, tcpPair)
	cancel()
	out := <-done
	if out.err != nil {
		t.Errorf("Join after cancel = %v, want nil", out.err)
	}
	for _, c := range []net.Conn{left, right} {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("read after cancel = %v, want EOF", err)
		}
	}
}

// pipeFDs counts this process's open descriptors that are kernel pipes.
func pipeFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}

// TestIdleRelaysHoldNoPipes is the property that lets one process hold
// thousands of relayed connections: after traffic stops, no kernel pipe is
// held by a relay, only the bounded cache of free ones.
func TestIdleRelaysHoldNoPipes(t *testing.T) {
	watchdog(t, 2*time.Minute)
	before := pipeFDs(t)
	const relays = 100
	type ends struct{ l, r net.Conn }
	var all []ends
	for range relays {
		l, r, _ := relayed(t, context.Background(), tcpPair)
		all = append(all, ends{l, r})
	}
	// One exchange each way on every relay, then leave them idle.
	buf := make([]byte, 5)
	for _, e := range all {
		if _, err := e.l.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(e.r, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("relay carried %q, %v", buf, err)
		}
		if _, err := e.r.Write([]byte("olleh")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(e.l, buf); err != nil || string(buf) != "olleh" {
			t.Fatalf("relay carried %q, %v", buf, err)
		}
	}
	pipes.mu.Lock()
	cached := len(pipes.free)
	pipes.mu.Unlock()
	if cached == 0 {
		t.Fatal("no pipe was ever cached: the splice path was not taken")
	}
	held := pipeFDs(t) - before
	if held > 2*cached {
		t.Fatalf("%d idle relays hold %d pipe descriptors beyond the %d cached pipes", relays, held-2*cached, cached)
	}
}

// TestJoinSmallBulkSmall carries small messages (read/write path), a bulk
// burst (which switches a socket pair to splice) and small messages again
// (back to read/write) through one relay, each echoed back intact.
func TestJoinSmallBulkSmall(t *testing.T) {
	left, a := tcpPair(t)
	c, right := tcpPair(t)
	done := make(chan struct{})
	go func() { defer close(done); Join(context.Background(), a, c) }()
	go func() { io.Copy(right, right); right.(*net.TCPConn).CloseWrite() }()
	left.SetDeadline(time.Now().Add(20 * time.Second))
	seq := byte(0)
	round := func(size int) {
		t.Helper()
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = seq + byte(i*7)
		}
		seq++
		errc := make(chan error, 1)
		go func() { _, err := left.Write(msg); errc <- err }()
		got := make([]byte, size)
		if _, err := io.ReadFull(left, got); err != nil {
			t.Fatalf("echo of %d bytes: %v", size, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes differs", size)
		}
	}
	for _, size := range []int{1, 64, 100, 4 << 20, 3 << 20, 64, 1, 200, 8 << 20, 10} {
		round(size)
	}
	left.(*net.TCPConn).CloseWrite()
	if n, err := io.Copy(io.Discard, left); n != 0 || err != nil {
		t.Fatalf("after half-close: %d bytes, %v", n, err)
	}
	<-done
}
