package tcp

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// qitem is a queue item for the tests; dead ones cannot be taken.
type qitem struct {
	id   int
	dead bool
}

func (it *qitem) take() bool { return !it.dead }
func (it *qitem) close()     {}

// TestQueueWakesEachWaiter: with many pops waiting, every item pushed
// reaches exactly one of them, dead items are skipped, and waiters whose
// context ends pass a wake-up they got on, so that no item is left while a
// pop waits.
func TestQueueWakesEachWaiter(t *testing.T) {
	q := newQueue()
	const waiters = 40
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Half of the waiters give up early.
	quitters, qcancel := context.WithCancel(ctx)
	got := make(chan int, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ctx
			if i%2 == 1 {
				c = quitters
			}
			it, err := q.pop(c)
			if err != nil {
				if i%2 == 0 {
					t.Errorf("waiter %d: %v", i, err)
				}
				return
			}
			got <- it.(*qitem).id
		}()
	}
	for {
		q.mu.Lock()
		n := len(q.waiters)
		q.mu.Unlock()
		if n == waiters {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for i := range waiters {
		q.push(&qitem{id: -1, dead: true})
		q.push(&qitem{id: i})
		if i == 3 {
			qcancel()
		}
	}
	qcancel()
	wg.Wait()
	close(got)
	seen := map[int]bool{}
	for id := range got {
		if id < 0 || seen[id] {
			t.Fatalf("item %d handed out twice, or a dead one", id)
		}
		seen[id] = true
	}
	if len(seen) < waiters/2 {
		t.Fatalf("%d items handed out, want at least %d (one per waiter that stayed)", len(seen), waiters/2)
	}
	// What the quitters left is still queued, each item once.
	for _, it := range q.shut() {
		id := it.(*qitem).id
		if id >= 0 && seen[id] {
			t.Fatalf("item %d both handed out and still queued", id)
		}
		if id >= 0 {
			seen[id] = true
		}
	}
	if len(seen) != waiters {
		t.Fatalf("%d items accounted for, want %d", len(seen), waiters)
	}
	if _, err := q.pop(ctx); !errors.Is(err, sdk.ErrClosed) {
		t.Fatalf("pop after shut: %v, want ErrClosed", err)
	}
}

// TestQueueShutWakesWaiters: shut ends every waiting pop with ErrClosed.
func TestQueueShutWakesWaiters(t *testing.T) {
	q := newQueue()
	errc := make(chan error, 5)
	for range 5 {
		go func() { _, err := q.pop(context.Background()); errc <- err }()
	}
	for {
		q.mu.Lock()
		n := len(q.waiters)
		q.mu.Unlock()
		if n == 5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	q.shut()
	for range 5 {
		select {
		case err := <-errc:
			if !errors.Is(err, sdk.ErrClosed) {
				t.Fatalf("pop: %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiting pop was not woken by shut")
		}
	}
}
