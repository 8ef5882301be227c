package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestStartPprofEnv: unset, nothing starts; a refused address names the
// variable (sdk/profiling tests the endpoints themselves).
func TestStartPprofEnv(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Setenv(pprofEnv, "")
	if err := startPprof(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("unset: %v", err)
	}
	t.Setenv(pprofEnv, "0.0.0.0:0")
	err := startPprof(ctx, slog.New(slog.DiscardHandler))
	if err == nil || !strings.HasPrefix(err.Error(), pprofEnv+`: "0.0.0.0:0": profiling is served on a loopback address only`) {
		t.Fatalf("a non-loopback address: %v", err)
	}
}
