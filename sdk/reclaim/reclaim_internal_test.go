package reclaim

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var reclaimSink []byte

// TestWhenIdle: memory is returned once after a burst of
// allocation, when the process goes quiet, not again while it stays
// quiet, and not while it allocates.
func TestWhenIdle(t *testing.T) {
	calls := watchIdle(t)
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
	reclaimedOnce(t, calls, "a burst")
}

// grow recurses depth frames of about 1 KiB each, so that the goroutine's
// stack grows, and then waits for release.
func grow(depth int, release <-chan struct{}) byte {
	var pad [1 << 10]byte
	pad[depth%len(pad)] = byte(depth)
	if depth == 0 {
		<-release
		return pad[0]
	}
	return grow(depth-1, release) + pad[1]
}

// TestWhenIdleAfterStackBurst: goroutines that grew their stacks and
// exited allocate next to nothing on the heap, yet leave memory the
// runtime keeps; that is a burst too, and it is returned once quiet.
func TestWhenIdleAfterStackBurst(t *testing.T) {
	calls := watchIdle(t)
	m := newMemory()
	allocs0, held0 := m.read()
	// 512 goroutines with 64 KiB stacks each: 32 MiB of stacks, well over
	// reclaimBurst, and almost no heap.
	release := make(chan struct{})
	var done sync.WaitGroup
	for range 512 {
		done.Add(1)
		go func() {
			defer done.Done()
			grow(48, release)
		}()
	}
	time.Sleep(reclaimCheck / 2)
	allocs1, held1 := m.read()
	close(release)
	done.Wait()
	if held1-held0 < reclaimBurst {
		t.Fatalf("the stacks grew the memory held by only %d bytes; the test needs more than %d", held1-held0, reclaimBurst)
	}
	if allocs1-allocs0 >= reclaimBurst {
		t.Fatalf("the stack burst allocated %d bytes on the heap: not a stack-only burst", allocs1-allocs0)
	}
	reclaimedOnce(t, calls, "a stack burst")
}

// reclaimedOnce waits up to 5 s for the first reclaim after the process
// went quiet after what, and checks that no second one follows while it
// stays quiet.
func reclaimedOnce(t *testing.T, calls *atomic.Int32, what string) {
	t.Helper()
	waitUntil := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(waitUntil) {
		time.Sleep(reclaimCheck / 2)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("reclaimed %d times within 5s of going quiet after %s, want 1", n, what)
	}
	time.Sleep(5 * reclaimCheck)
	if n := calls.Load(); n != 1 {
		t.Fatalf("reclaimed %d times while quiet with no new burst, want 1", n)
	}
}

// watchIdle runs whenIdle until the test ends, counting its reclaims, and
// checks that none comes before any burst.
func watchIdle(t *testing.T) *atomic.Int32 {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	calls := new(atomic.Int32)
	go whenIdle(ctx, func() { calls.Add(1) }, idleEvery)
	time.Sleep(3 * reclaimCheck)
	if n := calls.Load(); n != 0 {
		t.Fatalf("reclaimed %d times before any burst", n)
	}
	return calls
}

var idleSink [][]byte

// TestWhenIdleChecksIdleMemory: a quiet process holding far more than
// after its leanest reclaim is checked again without a new burst (memory
// that became garbage without allocating, as when connections close), and
// the checks back off while they free nothing.
func TestWhenIdleChecksIdleMemory(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu    sync.Mutex
		times []time.Time
	)
	const every = 200 * time.Millisecond
	// Start lean (earlier tests leave freed heap that the counted, not run,
	// reclaims never released), so that the 32 MiB below raise what the
	// process holds over its floor.
	debug.FreeOSMemory()
	go whenIdle(ctx, func() {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
	}, every)
	time.Sleep(3 * reclaimCheck)
	// 32 MiB kept live: the memory held stays far above the start, and a
	// reclaim (here counted, not run) could free none of it.
	for range 32 {
		idleSink = append(idleSink, make([]byte, 1<<20))
	}
	defer func() { idleSink = nil }()
	time.Sleep(idleQuiet + 8*every + 2*time.Second)
	mu.Lock()
	got := append([]time.Time(nil), times...)
	mu.Unlock()
	// The burst's reclaim, then idle checks once quiet for idleQuiet.
	if len(got) < 3 {
		t.Fatalf("reclaimed %d times in %v of quiet while holding 32 MiB, want the burst's and at least 2 idle checks", len(got), idleQuiet+8*every+2*time.Second)
	}
	// Backoff: nothing was freed, so the wait before each idle check
	// doubles from every; ticks can only make a gap longer, never shorter.
	for i := 2; i < len(got); i++ {
		if gap, want := got[i].Sub(got[i-1]), every<<(i-1); gap < want {
			t.Fatalf("idle checks %d and %d %v apart, want at least %v: no backoff while nothing is freed (%v)", i-1, i, gap, want, got)
		}
	}
}
