package yamux_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// freezer is a TCP proxy on loopback that can stop forwarding while
// keeping its connections open: a hung agent or a black-holed path.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(f.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go f.copy(u, c)
			go f.copy(c, u)
		}
	}()
	return f
}

func (f *freezer) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if f.frozen.Load() {
			if err != nil {
				return
			}
			continue // swallow
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.(*net.TCPConn).CloseWrite()
			}
			return
		}
	}
}

func (f *freezer) close() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

// TestFullEndpointReclaimsDeadSession: with MaxLinks 1, an idle session
// whose agent went silent (the path froze) is probed and closed when a new
// agent knocks, so the new agent is admitted at once instead of after the
// heartbeat threshold; an idle session that still answers keeps its place.
func TestFullEndpointReclaimsDeadSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := newTransport(t)
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw", MaxLinks: 1, HeartbeatThreshold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	addr := listenAddr(t, ep)
	px := newFreezer(t, addr)
	s1, err := tr.Dial(ctx, sdk.DialConfig{Addr: px.ln.Addr().String(), Passcode: "pw", HeartbeatThreshold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()

	// A live idle agent keeps its place.
	if s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"}); !errors.Is(err, sdk.ErrLinkLimit) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second agent while the first answers: err = %v, want sdk.ErrLinkLimit", err)
	}

	// The first agent's path freezes; a new agent is admitted in about
	// the probe time, far below the one-minute threshold.
	px.frozen.Store(true)
	start := time.Now()
	s2, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatalf("new agent after the first went silent: %v", err)
	}
	defer s2.Close()
	t.Logf("admitted after %v", time.Since(start).Round(time.Millisecond))
	checkStreams(t, ctx, ep, s2, 4)
}
