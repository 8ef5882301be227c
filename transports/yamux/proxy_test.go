package yamux_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a TCP proxy on loopback toward target whose path can go bad
// while its connections stay open: freeze makes it read and drop every
// byte (a hung agent or a black-holed path); stall makes it stop reading
// from both ends, as a process stopped with SIGSTOP does (its kernel still
// takes bytes until the buffers fill, then the writers block). cut closes
// every connection at once instead; it also runs at cleanup.
type proxy struct {
	ln      net.Listener
	frozen  atomic.Bool
	stalled atomic.Bool
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	conns   []net.Conn
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, done: make(chan struct{})}
	t.Cleanup(p.cut)
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
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.copy(u, c)
			go p.copy(c, u)
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 4<<10)
	for {
		if p.stalled.Load() {
			<-p.done
			return
		}
		n, err := src.Read(buf)
		if p.stalled.Load() {
			<-p.done
			return
		}
		if p.frozen.Load() {
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

func (p *proxy) freeze() { p.frozen.Store(true) }

func (p *proxy) stall() { p.stalled.Store(true) }

func (p *proxy) cut() {
	p.once.Do(func() {
		close(p.done)
		p.ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
}
