package ports

import (
	"container/heap"
	"fmt"
	"sync"
)

// Allocator hands out ports of a fixed pool, lowest free port first. It is
// safe for concurrent use.
//
// It knows nothing of sockets: a caller that finds a port held by another
// process (bind fails with EADDRINUSE) keeps it, asks [Allocator.Next] for
// another and releases the held one afterwards, so it is tried again later.
type Allocator struct {
	mu     sync.Mutex
	inPool map[int]bool // every port of the pool
	used   map[int]bool // ports handed out
	free   minHeap      // candidates; may hold used ports (lazy deletion)
	queued map[int]bool // ports present in free
}

// New returns an allocator over pool (duplicates are ignored).
func New(pool []int) *Allocator {
	a := &Allocator{
		inPool: make(map[int]bool, len(pool)),
		used:   make(map[int]bool),
		queued: make(map[int]bool, len(pool)),
	}
	for _, p := range pool {
		if !a.inPool[p] {
			a.inPool[p] = true
			a.queued[p] = true
			a.free = append(a.free, p)
		}
	}
	heap.Init(&a.free)
	return a
}

// Next takes the lowest free port. It returns [ErrNoFreePort] when none is
// left.
func (a *Allocator) Next() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.free.Len() > 0 {
		p := heap.Pop(&a.free).(int)
		delete(a.queued, p)
		if !a.used[p] {
			a.used[p] = true
			return p, nil
		}
	}
	return 0, ErrNoFreePort
}

// Reserve takes port p, as when a stored mapping is reopened. It returns
// [ErrNotInPool] or [ErrInUse] when it cannot.
func (a *Allocator) Reserve(p int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case !a.inPool[p]:
		return fmt.Errorf("port %d: %w", p, ErrNotInPool)
	case a.used[p]:
		return fmt.Errorf("port %d: %w", p, ErrInUse)
	}
	a.used[p] = true // its heap entry is dropped lazily by Next
	return nil
}

// Release gives p back to the pool. Releasing a port that is not taken is
// a no-op.
func (a *Allocator) Release(p int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.used[p] {
		return
	}
	delete(a.used, p)
	if !a.queued[p] {
		a.queued[p] = true
		heap.Push(&a.free, p)
	}
}

// Free returns how many ports of the pool are not taken.
func (a *Allocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inPool) - len(a.used)
}

// Size returns the number of ports in the pool.
func (a *Allocator) Size() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inPool)
}

type minHeap []int

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
