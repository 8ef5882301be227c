package tcp

import (
	"context"
	"sync"

	"github.com/iofog/iofog-connector/sdk"
)

// item is something an endpoint queues: an idle link waiting for Open, or a
// stream waiting for Accept.
type item interface {
	// take claims the item for one caller; false means it died or was
	// claimed already and must be skipped.
	take() bool
	// close releases the item when the endpoint shuts down.
	close()
}

// queue is a FIFO of items that callers wait on with a context. A push
// wakes one waiter, not all of them: under a connection-rate load tens of
// public clients wait in Open for the next idle link.
type queue struct {
	mu     sync.Mutex
	items  []item
	closed bool
	// waiters are the pops waiting for an item, oldest first; each
	// channel has room for one wake-up.
	waiters []chan struct{}
}

func newQueue() *queue { return &queue{} }

// push appends it and reports whether the queue was still open.
func (q *queue) push(it item) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.items = append(q.items, it)
	q.wakeOneLocked()
	return true
}

// wakeOneLocked wakes the oldest waiter, if any. q.mu is held.
func (q *queue) wakeOneLocked() {
	if len(q.waiters) == 0 {
		return
	}
	w := q.waiters[0]
	q.waiters[0] = nil
	q.waiters = q.waiters[1:]
	w <- struct{}{}
}

// pop waits for an item it can take, ctx to be done, or the queue to close
// (sdk.ErrClosed).
func (q *queue) pop(ctx context.Context) (item, error) {
	var w chan struct{}
	for {
		q.mu.Lock()
		for len(q.items) > 0 {
			it := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			if it.take() {
				if len(q.items) > 0 {
					// Items left: pass the turn on, as this pop may
					// have taken a wake-up meant for an item it left.
					q.wakeOneLocked()
				}
				q.mu.Unlock()
				return it, nil
			}
		}
		if q.closed {
			q.mu.Unlock()
			return nil, sdk.ErrClosed
		}
		if w == nil {
			w = make(chan struct{}, 1)
		}
		q.waiters = append(q.waiters, w)
		q.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			q.mu.Lock()
			if !q.dropWaiterLocked(w) {
				// Woken meanwhile: hand the wake-up on.
				q.wakeOneLocked()
			}
			q.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// dropWaiterLocked removes w from the waiters and reports whether it was
// there (not woken yet). q.mu is held.
func (q *queue) dropWaiterLocked(w chan struct{}) bool {
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// remove drops it from the queue if it is there.
func (q *queue) remove(it item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.items {
		if x == it {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return
		}
	}
}

// shut closes the queue and returns the items it held.
func (q *queue) shut() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	for len(q.waiters) > 0 {
		q.wakeOneLocked()
	}
	items := q.items
	q.items = nil
	return items
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
