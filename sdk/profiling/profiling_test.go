package profiling

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:0", "127.0.0.9:1"} {
		if err := CheckAddr(ok); err != nil {
			t.Errorf("CheckAddr(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:6060", ":6060", "localhost:6060", "10.0.0.1:6060", "[::]:6060", "6060"} {
		if err := CheckAddr(bad); err == nil {
			t.Errorf("CheckAddr(%q) = nil, want a refusal", bad)
		}
	}
}

// TestStartServes starts the endpoint on a free loopback port, reads the
// goroutine profile index, and sees it closed once ctx is done.
func TestStartServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Start(ctx, addr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("pprof answered %d: %.200s", resp.StatusCode, body)
	}
	if err := Start(ctx, "0.0.0.0:0", nil); err == nil {
		t.Error("a non-loopback address was accepted")
	}
	if err := Start(ctx, addr, nil); err == nil {
		t.Error("an address in use was accepted")
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the endpoint still listens after its ctx ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
