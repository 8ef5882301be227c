package main

import (
	"context"
	"crypto/rand"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLinearFit(t *testing.T) {
	x := []float64{0, 10, 20, 30}
	y := []float64{5, 7, 9, 11}
	slope, icpt, ok := linearFit(x, y)
	if !ok || math.Abs(slope-0.2) > 1e-9 || math.Abs(icpt-5) > 1e-9 {
		t.Fatalf("fit = %v, %v, %v; want 0.2, 5, true", slope, icpt, ok)
	}
	if _, _, ok := linearFit([]float64{1}, []float64{1}); ok {
		t.Error("one point fitted")
	}
	if _, _, ok := linearFit([]float64{3, 3}, []float64{1, 2}); ok {
		t.Error("equal x fitted")
	}
}

// soakTestServer serves each connection with h on loopback.
func soakTestServer(t *testing.T, h func(net.Conn)) dialFunc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				h(c)
			}()
		}
	}()
	return newDialer(ln.Addr().String(), nil)
}

// TestSoakTransfer: an echo is ok; a flipped byte or an extra byte is a
// byte error; an early close is interrupted (or no link before any byte);
// a refused dial and a silent server are told apart.
func TestSoakTransfer(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 300<<10)
	rand.Read(data)
	echo := func(c net.Conn) { io.Copy(c, c); c.(*net.TCPConn).CloseWrite() }
	flip := func(c net.Conn) {
		b, _ := io.ReadAll(c)
		b[len(b)/2] ^= 1
		c.Write(b)
	}
	extra := func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write(append(b, 0))
	}
	half := func(c net.Conn) {
		b := make([]byte, 1000)
		n, _ := io.ReadFull(c, b)
		c.Write(b[:n])
	}
	none := func(c net.Conn) { c.Read(make([]byte, 10)) }
	silent := func(c net.Conn) { io.Copy(io.Discard, c); time.Sleep(5 * time.Second) }
	for _, tc := range []struct {
		name string
		h    func(net.Conn)
		want xferResult
	}{
		{"echo", echo, xferOK},
		{"flipped byte", flip, xferByteError},
		{"extra byte", extra, xferByteError},
		{"half", half, xferInterrupted},
		{"closed at once", none, xferNoLink},
		{"silent", silent, xferStalled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, up, down, detail := soakTransfer(ctx, soakTestServer(t, tc.h), data, 2*time.Second)
			if res != tc.want {
				t.Fatalf("result %d (%s), want %d; up %d down %d", res, detail, tc.want, up, down)
			}
			if res == xferOK && (up != int64(len(data)) || down != int64(len(data))) {
				t.Errorf("ok with up %d down %d of %d", up, down, len(data))
			}
			if res == xferByteError && detail == "" {
				t.Error("byte error without detail")
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		if res, _, _, _ := soakTransfer(ctx, newDialer(addr, nil), data, 2*time.Second); res != xferDialFailed {
			t.Fatalf("result %d, want dial failed", res)
		}
	})
	t.Run("aborted", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		if res, _, _, _ := soakTransfer(cctx, soakTestServer(t, silent), data, 10*time.Second); res != xferAborted {
			t.Fatalf("result %d, want aborted", res)
		}
	})
}

// TestSoakReport: the report names the byte errors, flags a growing
// metric and keeps a flat one flat.
func TestSoakReport(t *testing.T) {
	cfg := soakConfig{Duration: 100 * time.Second, Interval: 10 * time.Second, Warmup: 0.2, Concurrency: 8, MaxSize: 1 << 20,
		KillMin: time.Second, KillMax: 2 * time.Second, LifeMin: time.Second, LifeMax: 2 * time.Second, Command: "make soak"}
	c := &soakCounters{}
	c.record(xferOK, 10, 10, "")
	c.record(xferByteError, 10, 5, "byte 5 of 10 differs")
	rep := soakReport{cfg: cfg, transports: []string{"tcp"}, counts: map[string]*soakCounters{"tcp": c}}
	for i := range 11 {
		rep.samples = append(rep.samples, soakSample{T: time.Duration(i) * 10 * time.Second,
			DaemonFDs: 40 + 10*i, DaemonThreads: 10, Goroutines: 100, DaemonRSSKB: 30 << 10})
	}
	md := rep.render()
	for _, want := range []string{"Byte errors: **1** in 2 connections", "**FAIL**", "byte 5 of 10 differs",
		"daemon descriptors +3600.0/h", "| daemon threads | 9 | 10.0 | 10.0 | 10.0 | +0.00 | +0.00 | max(3, 10 % of mean) | yes |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
