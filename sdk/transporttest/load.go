package transporttest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

func testLargeTransfer(t *testing.T, e *env) {
	ep, s := e.setup()
	c, a := e.pair(ep, s)
	const size = 8 << 20
	down, up := pattern(1, size), pattern(2, size)
	var wg sync.WaitGroup
	var cerr, aerr error
	wg.Add(2)
	go func() { defer wg.Done(); cerr = transfer(c, down, up) }()
	go func() { defer wg.Done(); aerr = transfer(a, up, down) }()
	wg.Wait()
	if cerr != nil {
		t.Errorf("connector side (8 MiB each way at once): %v", cerr)
	}
	if aerr != nil {
		t.Errorf("agent side (8 MiB each way at once): %v", aerr)
	}
}

func testConcurrentStreams(t *testing.T, e *env) {
	ep, s := e.setup()
	n, size := e.opts.Streams, e.opts.StreamBytes
	ctx := e.ctx(e.opts.Timeout)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	// Connector side: open n streams at once, tag each with its index,
	// then move data both ways.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ep.Open(ctx)
			if err != nil {
				errs <- fmt.Errorf("stream %d: Endpoint.Open: %w", i, err)
				return
			}
			e.track(c)
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], uint64(i))
			if _, err := c.Write(hdr[:]); err != nil {
				errs <- fmt.Errorf("stream %d: connector write: %w", i, err)
				return
			}
			if err := transfer(c, pattern(uint64(2*i+10), size), pattern(uint64(2*i+11), size)); err != nil {
				errs <- fmt.Errorf("stream %d, connector side: %w", i, err)
			}
		}()
	}
	// Agent side: accept n streams; each says which it is.
	for range n {
		a, err := s.Accept(ctx)
		if err != nil {
			t.Errorf("Session.Accept: %v", err)
			break
		}
		e.track(a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hdr [8]byte
			if _, err := io.ReadFull(a, hdr[:]); err != nil {
				errs <- fmt.Errorf("agent: reading the stream tag: %w", err)
				return
			}
			i := binary.BigEndian.Uint64(hdr[:])
			if i >= uint64(n) {
				errs <- fmt.Errorf("agent: stream tag %d out of range: bytes of another stream leaked in", i)
				return
			}
			if err := transfer(a, pattern(2*i+11, size), pattern(2*i+10, size)); err != nil {
				errs <- fmt.Errorf("stream %d, agent side: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d concurrent streams, %d KiB each way, %d MiB in all, checksummed", n, size>>10, 2*n*size>>20)
}

func testIsolation(t *testing.T, e *env) {
	cfg1, cfg2 := e.endpointConfig(), e.endpointConfig()
	ep1, addr1 := e.listen(cfg1)
	ep2, addr2 := e.listen(cfg2)
	s1 := e.dial(e.dialConfig(addr1, cfg1.Passcode))
	s2 := e.dial(e.dialConfig(addr2, cfg2.Passcode))

	// A stream opened on endpoint 1 reaches only its own agent.
	stray := make(chan net.Conn, 1)
	ctx := e.ctx(30 * time.Second)
	go func() {
		if conn, err := s2.Accept(ctx); err == nil {
			e.track(conn)
			stray <- conn
		}
	}()
	c1, a1 := e.pair(ep1, s1)
	if err := exchange(c1, a1, "endpoint 1"); err != nil {
		t.Fatalf("endpoint 1: %v", err)
	}
	select {
	case <-stray:
		t.Fatal("the agent of endpoint 2 accepted a stream opened on endpoint 1")
	case <-time.After(300 * time.Millisecond):
	}
	// The agent of endpoint 2 now gets its own stream (possibly the Accept
	// already pending).
	var c2, a2 net.Conn
	func() {
		oc, err := ep2.Open(ctx)
		if err != nil {
			t.Fatalf("endpoint 2: Open: %v", err)
		}
		e.track(oc)
		c2 = oc
		select {
		case a2 = <-stray:
		case <-ctx.Done():
			t.Fatal("endpoint 2: the agent's Accept never returned")
		}
	}()
	if err := exchange(c2, a2, "endpoint 2"); err != nil {
		t.Fatalf("endpoint 2: %v", err)
	}

	// Closing one stream leaves its siblings alone, from either end.
	c3, a3 := e.pair(ep1, s1)
	c4, a4 := e.pair(ep1, s1)
	c3.Close()
	if err := readEnds(a3, 20*time.Second); err != nil {
		t.Errorf("closing a stream on the connector side did not reach the agent: %v", err)
	}
	if err := exchange(c4, a4, "sibling of a stream closed by the connector"); err != nil {
		t.Fatalf("%v", err)
	}
	c5, a5 := e.pair(ep1, s1)
	a4.Close()
	if err := readEnds(c4, 20*time.Second); err != nil {
		t.Errorf("closing a stream on the agent side did not reach the connector: %v", err)
	}
	if err := exchange(c5, a5, "sibling of a stream closed by the agent"); err != nil {
		t.Fatalf("%v", err)
	}
	if err := exchange(c1, a1, "first stream, still open"); err != nil {
		t.Fatalf("%v", err)
	}
}

func testPrivateMode(t *testing.T, e *env) {
	cfg := e.endpointConfig()
	cfg.Mode = sdk.ModePrivate
	ep, addr := e.listen(cfg)
	s := e.dial(e.dialConfig(addr, cfg.Passcode))
	// Streams the agent opens arrive at Accept; the agent speaks first.
	c, a := e.privatePair(ep, s)
	if err := oneWay(a, c, []byte("agent opened this stream")); err != nil {
		t.Fatalf("agent-opened stream, agent→connector: %v", err)
	}
	if err := oneWay(c, a, []byte("connector answers")); err != nil {
		t.Fatalf("agent-opened stream, connector→agent: %v", err)
	}
	// Several at once, each byte-exact.
	const n, size = 4, 256 << 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		c, a := e.privatePair(ep, s)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := transfer(a, pattern(uint64(100+i), size), pattern(uint64(200+i), size)); err != nil {
				errs <- fmt.Errorf("private stream %d, agent side: %w", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := transfer(c, pattern(uint64(200+i), size), pattern(uint64(100+i), size)); err != nil {
				errs <- fmt.Errorf("private stream %d, connector side: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The core also opens streams toward a private agent.
	c2, a2 := e.pair(ep, s)
	if err := exchange(c2, a2, "connector-opened stream in private mode"); err != nil {
		t.Fatalf("%v", err)
	}
}
