package ports

import (
	"container/heap"
	"fmt"
	"sync"
)

// Allocator hands out ports of a pool, lowest free port first. It is safe
// for concurrent use.
//
// It knows nothing of sockets: a caller that finds a port held by another
// process (bind fails with EADDRINUSE) keeps it, asks [Allocator.Next] for
// another and releases the held one afterwards, so it is tried again later.
//
// The pool can be replaced while ports are held ([Allocator.SetPool]): a
// holder keeps its port whether or not the new pool has it.
type Allocator struct {
	mu     sync.Mutex
	inPool map[int]bool // every port of the pool
	used   map[int]bool // ports taken, in the pool or not
	usedIn int          // ports of used that are in the pool
	free   minHeap      // candidates; may hold used or removed ports (lazy deletion)
	queued map[int]bool // ports present in free
}

// New returns an allocator over pool (duplicates are ignored).
func New(pool []int) *Allocator {
	a := &Allocator{used: make(map[int]bool)}
	a.setPool(pool)
	return a
}

// setPool makes pool the pool; a.mu is held or a is new.
func (a *Allocator) setPool(pool []int) {
	a.inPool = make(map[int]bool, len(pool))
	a.queued = make(map[int]bool, len(pool))
	a.free = a.free[:0]
	a.usedIn = 0
	for _, p := range pool {
		if a.inPool[p] {
			continue
		}
		a.inPool[p] = true
		if a.used[p] {
			a.usedIn++
			continue
		}
		a.queued[p] = true
		a.free = append(a.free, p)
	}
	heap.Init(&a.free)
}

// PoolChange is what [Allocator.SetPool] changed.
type PoolChange struct {
	// Added and Removed count the ports that entered and left the pool.
	Added, Removed int
	// HeldOutside counts the ports still held that the new pool does not
	// have: their holders keep them; once released they are not handed
	// out again.
	HeldOutside int
	// Size and Free are the new pool's size and free ports.
	Size, Free int
}

// SetPool replaces the pool with pool (duplicates are ignored). Ports
// that are taken stay taken, in the new pool or not; ports of the new pool
// that are not taken become free. It is O(n) in the pool sizes.
func (a *Allocator) SetPool(pool []int) PoolChange {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.inPool
	a.setPool(pool)
	var c PoolChange
	for p := range a.inPool {
		if !old[p] {
			c.Added++
		}
	}
	for p := range old {
		if !a.inPool[p] {
			c.Removed++
		}
	}
	c.HeldOutside = len(a.used) - a.usedIn
	c.Size, c.Free = len(a.inPool), len(a.inPool)-a.usedIn
	return c
}

// Next takes the lowest free port. It returns [ErrNoFreePort] when none is
// left.
func (a *Allocator) Next() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.free.Len() > 0 {
		p := heap.Pop(&a.free).(int)
		delete(a.queued, p)
		if !a.used[p] && a.inPool[p] {
			a.used[p] = true
			a.usedIn++
			return p, nil
		}
	}
	return 0, ErrNoFreePort
}

// Reserve takes port p, as when a stored mapping is reopened. It returns
// [ErrInUse] when p is taken. For a port outside the pool it returns
// [ErrNotInPool] but still records p as held, so that a later pool that
// has p (see [Allocator.SetPool]) does not hand it out while its holder
// keeps it; [Allocator.Release] ends that.
func (a *Allocator) Reserve(p int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.used[p]:
		return fmt.Errorf("port %d: %w", p, ErrInUse)
	case !a.inPool[p]:
		a.used[p] = true
		return fmt.Errorf("port %d: %w", p, ErrNotInPool)
	}
	a.used[p] = true // its heap entry is dropped lazily by Next
	a.usedIn++
	return nil
}

// Release gives p back to the pool (a port outside the pool is simply no
// longer held). Releasing a port that is not taken is a no-op.
func (a *Allocator) Release(p int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.used[p] {
		return
	}
	delete(a.used, p)
	if !a.inPool[p] {
		return
	}
	a.usedIn--
	if !a.queued[p] {
		a.queued[p] = true
		heap.Push(&a.free, p)
	}
}

// Free returns how many ports of the pool are not taken.
func (a *Allocator) Free() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inPool) - a.usedIn
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
