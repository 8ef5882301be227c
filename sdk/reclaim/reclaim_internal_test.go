package reclaim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

var reclaimSink []byte

// TestWhenIdle: memory is returned once after a burst of
// allocation, when the process goes quiet, not again while it stays
// quiet, and not while it allocates.
func TestWhenIdle(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var calls atomic.Int32
	go whenIdle(ctx, func() { calls.Add(1) })
	time.Sleep(3 * reclaimCheck)
	if n := calls.Load(); n != 0 {
		t.Fatalf("reclaimed %d times before any burst", n)
	}
	// A busy stretch: a steady allocation rate far over reclaimQuiet per
	// check, for 5 checks.
	deadline := time.Now().Add(5 * reclaimCheck)
	for time.Now().Before(deadline) {
		for range 64 {
			reclaimSink = make([]byte, 64<<10)
		}
		time.Sleep(reclaimCheck / 10)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("reclaimed %d times while busy", n)
	}
	waitUntil := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(waitUntil) {
		time.Sleep(reclaimCheck / 2)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("reclaimed %d times within 5s of going quiet after a burst, want 1", n)
	}
	time.Sleep(5 * reclaimCheck)
	if n := calls.Load(); n != 1 {
		t.Fatalf("reclaimed %d times while quiet with no new burst, want 1", n)
	}
}
