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

// queue is a FIFO of items that callers wait on with a context.
type queue struct {
	mu     sync.Mutex
	items  []item
	closed bool
	// notify is closed and replaced whenever an item is pushed or the
	// queue closes, waking every waiter.
	notify chan struct{}
}

func newQueue() *queue { return &queue{notify: make(chan struct{})} }

// push appends it and reports whether the queue was still open.
func (q *queue) push(it item) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.items = append(q.items, it)
	close(q.notify)
	q.notify = make(chan struct{})
	return true
}

// pop waits for an item it can take, ctx to be done, or the queue to close
// (sdk.ErrClosed).
func (q *queue) pop(ctx context.Context) (item, error) {
	for {
		q.mu.Lock()
		for len(q.items) > 0 {
			it := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			if it.take() {
				q.mu.Unlock()
				return it, nil
			}
		}
		if q.closed {
			q.mu.Unlock()
			return nil, sdk.ErrClosed
		}
		wait := q.notify
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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
	close(q.notify)
	items := q.items
	q.items = nil
	return items
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
