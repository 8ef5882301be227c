package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestCheckPprofAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:0", "127.0.0.9:1"} {
		if err := checkPprofAddr(ok); err != nil {
			t.Errorf("checkPprofAddr(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:6060", ":6060", "localhost:6060", "10.0.0.1:6060", "[::]:6060", "6060"} {
		if err := checkPprofAddr(bad); err == nil {
			t.Errorf("checkPprofAddr(%q) = nil, want a refusal", bad)
		}
	}
}

// TestPprofServes starts the endpoint on a free loopback port and reads
// the goroutine profile index; off when the variable is unset.
func TestPprofServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Setenv(pprofEnv, addr)
	if err := startPprof(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("pprof answered %d: %.200s", resp.StatusCode, body)
	}
	t.Setenv(pprofEnv, "0.0.0.0:0")
	if err := startPprof(ctx, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a non-loopback address was accepted")
	}
}
