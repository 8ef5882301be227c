package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestOnSync: Options.OnSync hears of each journal fsync (one per batch),
// with a duration.
func TestOnSync(t *testing.T) {
	var mu sync.Mutex
	var calls []time.Duration
	s, _, err := Open(t.TempDir(), Options{OnSync: func(d time.Duration) {
		mu.Lock()
		calls = append(calls, d)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 3 {
		if err := s.Add(ctx, mk(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, mk(0).ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 4 {
		t.Fatalf("OnSync called %d times for 4 changes each awaited, want 4", len(calls))
	}
	for _, d := range calls {
		if d <= 0 {
			t.Fatalf("OnSync got %v, want a positive duration", d)
		}
	}
}
