package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startTestService runs the service in-process on a kernel-chosen
// loopback port and stops it when the test ends.
func startTestService(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("service did not stop")
		}
	})
	return ln.Addr().String()
}

func TestLoadAgainstService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := newDialer(startTestService(t), nil)

	lr, err := pingPong(ctx, dial, 500, 64)
	if err != nil {
		t.Fatalf("pingPong: %v", err)
	}
	if len(lr.RTT) != 500 || lr.RTT[0] <= 0 || lr.RTT[0] > lr.RTT[499] {
		t.Errorf("pingPong: %d sorted positive RTTs expected, got %d (first %v last %v)", 500, len(lr.RTT), lr.RTT[0], lr.RTT[len(lr.RTT)-1])
	}

	rr := connRate(ctx, dial, 4, 200*time.Millisecond)
	if rr.OK == 0 || rr.Failed != 0 {
		t.Errorf("connRate: ok %d failed %d (%v); want ok > 0, no failures", rr.OK, rr.Failed, rr.FirstErr)
	}

	h := holdConns(ctx, dial, 50, 8)
	if len(h.Conns) != 50 || h.Failed != 0 {
		t.Errorf("holdConns: held %d failed %d (%v); want 50, 0", len(h.Conns), h.Failed, h.FirstErr)
	}
	if bad := reverify(h.Conns); bad != 0 {
		t.Errorf("reverify: %d failed", bad)
	}
	h.close()

	for _, down := range []bool{false, true} {
		br, err := bulk(ctx, dial, 2, 200*time.Millisecond, down)
		if err != nil || br.Bytes == 0 || br.bitsPerSec() <= 0 {
			t.Errorf("bulk(down=%v) = %+v, %v; want bytes moved", down, br, err)
		}
	}
}

func TestHoldCountsFailures(t *testing.T) {
	// A port nobody listens on: every connection must count as failed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := holdConns(ctx, newDialer(addr, nil), 5, 2)
	if len(h.Conns) != 0 || h.Failed != 5 || h.FirstErr == nil {
		t.Errorf("holdConns to a closed port: held %d failed %d err %v; want 0, 5, an error", len(h.Conns), h.Failed, h.FirstErr)
	}
}

func TestChildStoppedByPID(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep binary")
	}
	cl := &cleanup{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var order []string
	cl.push(func() { order = append(order, "first") })
	c, err := startChild(cl, log, "sleeper", nil, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	cl.push(func() { order = append(order, "last") })
	if !c.alive() {
		t.Fatal("child not alive after start")
	}
	done := make(chan struct{})
	go func() { cl.run(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("cleanup did not stop the child")
	}
	if c.alive() {
		t.Error("child alive after cleanup")
	}
	if got := strings.Join(order, ","); got != "last,first" {
		t.Errorf("cleanup order = %s, want last,first", got)
	}
}

func TestHAProxyConfig(t *testing.T) {
	got := haproxyConfig(map[int]string{40001: "127.0.0.1:5000"}, 9200, "")
	for _, want := range []string{"mode tcp", "option splice-auto", "option splice-request", "option splice-response",
		"maxconn 9200", "maxpipes 256", "bind 127.0.0.1:40001", "server s0 127.0.0.1:5000", "nbthread 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("haproxy config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "ssl") {
		t.Errorf("plain haproxy config mentions ssl:\n%s", got)
	}
	got = haproxyConfig(map[int]string{40002: "127.0.0.1:5000"}, 9200, "/tmp/x/haproxy.pem")
	for _, want := range []string{"bind 127.0.0.1:40002 ssl crt /tmp/x/haproxy.pem", "ssl-min-ver TLSv1.3", "server s0 127.0.0.1:5000", "mode tcp"} {
		if !strings.Contains(got, want) {
			t.Errorf("haproxy tls config lacks %q:\n%s", want, got)
		}
	}
}

func TestParseIperf(t *testing.T) {
	got, err := parseIperf([]byte(`{"start":{},"end":{"sum_received":{"bytes":1e9,"seconds":1,"bits_per_second":8e9}}}`))
	if err != nil || got != 8e9 {
		t.Errorf("parseIperf = %v, %v; want 8e9", got, err)
	}
	if _, err := parseIperf([]byte(`{"error":"unable to connect to server"}`)); err == nil || !strings.Contains(err.Error(), "unable to connect") {
		t.Errorf("parseIperf(error) = %v; want the iperf3 error", err)
	}
	if _, err := parseIperf([]byte(`not json`)); err == nil {
		t.Error("parseIperf(not json): want an error")
	}
}

// TestHAProxyTLSAnchor starts the real "haproxy tls" anchor in front of a
// loopback echo service and checks that a client gets TLS 1.3 with the
// generated certificate verified and its bytes back in plain text from the
// service.
func TestHAProxyTLSAnchor(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed (.ci/run installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := &cleanup{}
	defer cl.run()
	a := setupHAProxyTLS(ctx, cl, slog.New(slog.DiscardHandler), t.TempDir(), 100, ln.Addr().String())
	if a.skip != "" {
		t.Fatalf("haproxy tls anchor: %s", a.skip)
	}
	if !a.tls || len(a.hop1) != 1 {
		t.Fatalf("anchor = %+v; want tls with one hop-1 PID", a)
	}
	c, err := a.svc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc, ok := c.(*tls.Conn)
	if !ok {
		t.Fatalf("dialer returned %T, want *tls.Conn", c)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version = %#x, want TLS 1.3", v)
	}
	msg := bytes.Repeat([]byte("haproxy-tls "), 1000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Error("echo through haproxy tls differs")
	}
}
