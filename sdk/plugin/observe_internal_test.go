package plugin

import (
	"net"
	"sync"
	"testing"
)

type countingObserver struct {
	mu   sync.Mutex
	seen map[net.Conn]int
}

func (o *countingObserver) StreamClosed(c net.Conn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen[c]++
}

func (o *countingObserver) count(c net.Conn) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[c]
}

// TestObservedFallbacks: the plugin tells its endpoint itself when the
// host cannot: a stream that never reached the host, and any stream when
// the host does not report closed streams (an earlier release). A host
// that reports is waited for, and told once.
func TestObservedFallbacks(t *testing.T) {
	var o observed
	ob := &countingObserver{seen: map[net.Conn]int{}}
	conns := make([]net.Conn, 4)
	for i := range conns {
		conns[i] = &net.TCPConn{}
		o.add(ticket{byte(i)}, ob, conns[i])
	}
	o.ended(ticket{0}, false) // unclaimed
	o.ended(ticket{1}, true)  // joined, and the host does not report
	if ob.count(conns[0]) != 1 || ob.count(conns[1]) != 1 {
		t.Fatalf("unclaimed told %d times, joined without a reporting host %d times; want 1 and 1", ob.count(conns[0]), ob.count(conns[1]))
	}
	o.hostReports.Store(true)
	o.ended(ticket{2}, true)
	if ob.count(conns[2]) != 0 {
		t.Fatal("a reporting host's stream was told closed before the host said so")
	}
	o.done(ticket{2})
	o.done(ticket{2})
	o.ended(ticket{2}, true)
	if ob.count(conns[2]) != 1 {
		t.Fatalf("told %d times, want once", ob.count(conns[2]))
	}
	o.done(ticket{9}) // unknown: ignored
	if o.len() != 1 {
		t.Fatalf("%d streams wait, want 1 (the one not ended)", o.len())
	}
}
