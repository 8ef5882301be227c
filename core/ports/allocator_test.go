package ports

import (
	"errors"
	"sync"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    Range
		wantErr bool
	}{
		{"7000", Range{7000, 7000}, false},
		{"7000-7010", Range{7000, 7010}, false},
		{" 1 - 65535 ", Range{1, 65535}, false},
		{"7000-", Range{}, true},
		{"-7000", Range{}, true},
		{"7010-7000", Range{}, true},
		{"0", Range{}, true},
		{"65536", Range{}, true},
		{"abc", Range{}, true},
		{"", Range{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadSpec) {
					t.Fatalf("ParseSpec(%q) err = %v, want ErrBadSpec", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSpec(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPoolExcludes(t *testing.T) {
	got := Pool([]Range{{10, 15}, {14, 16}}, []Range{{12, 12}, {16, 20}})
	want := []int{10, 11, 13, 14, 15}
	if len(got) != len(want) {
		t.Fatalf("Pool = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Pool = %v, want %v", got, want)
		}
	}
}

func TestAllocatorNeverTwiceAndReleases(t *testing.T) {
	a := New([]int{5, 3, 4})
	seen := map[int]bool{}
	for range 3 {
		p, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Next on empty pool: %v, want ErrNoFreePort", err)
	}
	if a.Free() != 0 {
		t.Fatalf("Free = %d, want 0", a.Free())
	}
	a.Release(4)
	a.Release(4) // double release is a no-op
	if got, err := a.Next(); err != nil || got != 4 {
		t.Fatalf("Next after release = %d, %v; want 4", got, err)
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("double release created a second copy: %v", err)
	}
}

func TestAllocatorReserve(t *testing.T) {
	a := New([]int{1, 2, 3})
	if err := a.Reserve(1); err != nil {
		t.Fatal(err)
	}
	if err := a.Reserve(1); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Reserve: %v, want ErrInUse", err)
	}
	if err := a.Reserve(9); !errors.Is(err, ErrNotInPool) {
		t.Fatalf("Reserve outside pool: %v, want ErrNotInPool", err)
	}
	if got, _ := a.Next(); got != 2 {
		t.Fatalf("Next = %d, want 2 (1 is reserved)", got)
	}
	a.Release(1)
	if got, _ := a.Next(); got != 1 {
		t.Fatalf("Next = %d, want 1 after release", got)
	}
	if a.Free() != 1 || a.Size() != 3 {
		t.Fatalf("Free/Size = %d/%d, want 1/3", a.Free(), a.Size())
	}
}

func TestAllocatorConcurrent(t *testing.T) {
	const n = 2000
	pool := make([]int, n)
	for i := range pool {
		pool[i] = 10000 + i
	}
	a := New(pool)
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 8 {
				p, err := a.Next()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[p]++
				mu.Unlock()
				if w%2 == 0 && p%3 == 0 {
					a.Release(p)
				}
			}
		}()
	}
	wg.Wait()
	for p, c := range seen {
		if c > 1 && p%3 != 0 {
			t.Fatalf("port %d handed out %d times without release", p, c)
		}
	}
}

func BenchmarkAllocatorNextRelease10k(b *testing.B) {
	pool := make([]int, 30000)
	for i := range pool {
		pool[i] = 20000 + i
	}
	a := New(pool)
	for range 20000 { // 10,000 mappings of two ports each
		if _, err := a.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		p, err := a.Next()
		if err != nil {
			b.Fatal(err)
		}
		a.Release(p)
	}
}
