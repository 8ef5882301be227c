package ports

import (
	"errors"
	"testing"
)

// TestSetPoolKeepsHeldPorts: holders keep ports the new pool drops, new
// ports come from the new pool only, and a dropped port is not handed out
// again once released.
func TestSetPoolKeepsHeldPorts(t *testing.T) {
	a := New([]int{10, 11, 12, 13})
	p10, _ := a.Next()
	p11, _ := a.Next()
	if p10 != 10 || p11 != 11 {
		t.Fatalf("Next = %d, %d; want 10, 11", p10, p11)
	}
	got := a.SetPool([]int{11, 20, 21, 21})
	want := PoolChange{Added: 2, Removed: 3, HeldOutside: 1, Size: 3, Free: 2}
	if got != want {
		t.Fatalf("SetPool = %+v, want %+v", got, want)
	}
	if a.Size() != 3 || a.Free() != 2 {
		t.Fatalf("Size/Free = %d/%d, want 3/2", a.Size(), a.Free())
	}
	for _, w := range []int{20, 21} {
		if p, err := a.Next(); err != nil || p != w {
			t.Fatalf("Next = %d, %v; want %d (11 is held, 12 and 13 left the pool)", p, err, w)
		}
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Next on a full pool: %v", err)
	}
	a.Release(10) // held outside the new pool: gone for good
	if _, err := a.Next(); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("port 10 came back after release although the pool dropped it: %v", err)
	}
	a.Release(11) // in both pools: free again
	if p, err := a.Next(); err != nil || p != 11 {
		t.Fatalf("Next = %d, %v; want 11", p, err)
	}
	if a.Free() != 0 {
		t.Fatalf("Free = %d, want 0", a.Free())
	}
}

// TestSetPoolHeldOutsideBecomesPoolPort: a port reserved while outside the
// pool (a stored mapping of older settings) is not handed out when a new
// pool takes it in, until its holder releases it.
func TestSetPoolHeldOutsideBecomesPoolPort(t *testing.T) {
	a := New([]int{1, 2})
	if err := a.Reserve(5); !errors.Is(err, ErrNotInPool) {
		t.Fatalf("Reserve(5) = %v, want ErrNotInPool", err)
	}
	if err := a.Reserve(5); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Reserve(5) = %v, want ErrInUse", err)
	}
	if a.Free() != 2 {
		t.Fatalf("Free = %d, want 2 (5 is not in the pool)", a.Free())
	}
	c := a.SetPool([]int{5, 6})
	if c.Free != 1 || c.HeldOutside != 0 {
		t.Fatalf("SetPool = %+v, want Free 1, HeldOutside 0", c)
	}
	if p, _ := a.Next(); p != 6 {
		t.Fatalf("Next = %d, want 6 (5 is held)", p)
	}
	a.Release(5)
	if p, _ := a.Next(); p != 5 {
		t.Fatalf("Next = %d, want 5 after its release", p)
	}
}

// TestSetPoolBackAndForth: going back to an earlier pool restores its
// free ports without handing a held port twice.
func TestSetPoolBackAndForth(t *testing.T) {
	a := New([]int{1, 2, 3})
	p, _ := a.Next() // 1
	a.SetPool([]int{7})
	a.SetPool([]int{1, 2, 3})
	seen := map[int]bool{p: true}
	for range 2 {
		q, err := a.Next()
		if err != nil || seen[q] {
			t.Fatalf("Next = %d, %v (held: %v)", q, err, seen)
		}
		seen[q] = true
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Next = %v, want ErrNoFreePort", err)
	}
}
