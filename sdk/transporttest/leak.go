package transporttest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"golang.org/x/net/nettest"
)

func testNetConn(t *testing.T, e *env) {
	ep, s := e.setup()
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx := e.ctx(30 * time.Second)
		c, a, err := tryPair(ctx, ep, s)
		if err != nil {
			return nil, nil, nil, err
		}
		return c, a, func() { c.Close(); a.Close() }, nil
	})
}

// cycle runs a full life: listen, dial, streams both ways, close all.
func cycle(t *testing.T, e *env) {
	t.Helper()
	ep, s := e.setup()
	for i := range 3 {
		c, a := e.pair(ep, s)
		if err := exchange(c, a, fmt.Sprint("cycle ", i)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.endpointConfig()
	cfg.Mode = sdk.ModePrivate
	ep2, addr2 := e.listen(cfg)
	s2 := e.dial(e.dialConfig(addr2, cfg.Passcode))
	c, a := e.privatePair(ep2, s2)
	if err := exchange(c, a, "private"); err != nil {
		t.Fatal(err)
	}
	// An endpoint with a pending Open, and a refused agent.
	ep3, addr3 := e.listen(e.endpointConfig())
	_ = refusal(e, e.dialConfig(addr3, "wrong"), "Accept")
	ctx := e.ctx(200 * time.Millisecond)
	if conn, err := ep3.Open(ctx); err == nil {
		conn.Close()
	}
	e.closeAll()
}

func testNoLeaks(t *testing.T, e *env) {
	cycle(t, e) // warm up: lazily started background goroutines count once
	time.Sleep(200 * time.Millisecond)
	g0, f0 := runtime.NumGoroutine(), openFDs()
	cycle(t, e)
	var g, f int
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, f = runtime.NumGoroutine(), openFDs()
		if (g <= g0 && f <= f0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g > g0 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines 10s after everything was closed, %d before it was opened:\n%s", g, g0, buf)
	}
	if f0 >= 0 && f > f0 {
		t.Errorf("%d file descriptors open 10s after everything was closed, %d before:\n%s", f, f0, fdList())
	}
}

// openFDs counts this process's open file descriptors, or -1 where the
// system does not say (the check is then skipped).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func fdList() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, ent := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + ent.Name())
		fmt.Fprintf(&b, "  %s -> %s\n", ent.Name(), l)
	}
	return b.String()
}
