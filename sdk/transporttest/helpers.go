package transporttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// The helpers below serve a transport's own tests and benchmarks beyond
// the suite: pairing streams, checking many at once, and (bench.go) the
// shared benchmarks. They fail the test they are given.

// Listen starts an endpoint of tr on a free loopback port of network
// ("tcp" or "udp"; empty means "tcp"), with passcode "pw" when cfg has
// none, and returns it with its address. It is closed when tb's test
// ends.
func Listen(tb testing.TB, tr sdk.Transport, network string, cfg sdk.EndpointConfig) (sdk.Endpoint, string) {
	tb.Helper()
	if network == "" {
		network = "tcp"
	}
	if cfg.Passcode == "" {
		cfg.Passcode = "pw"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 10 {
		addr, err := freeAddr(network)
		if err != nil {
			tb.Fatalf("finding a free %s port: %v", network, err)
		}
		cfg.Addr = addr
		ep, err := tr.Listen(ctx, cfg)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			tb.Fatalf("Listen(%s): %v", addr, err)
		}
		tb.Cleanup(func() { ep.Close() })
		return ep, addr
	}
	tb.Fatal("Listen: every free port probed was taken")
	return nil, ""
}

// Setup starts an endpoint of tr as [Listen] does and dials one session
// to it with dcfg's timings (and the endpoint's address and passcode).
// Both are closed when tb's test ends.
func Setup(tb testing.TB, tr sdk.Transport, network string, cfg sdk.EndpointConfig, dcfg sdk.DialConfig) (sdk.Endpoint, sdk.Session) {
	tb.Helper()
	if cfg.Passcode == "" {
		cfg.Passcode = "pw"
	}
	ep, addr := Listen(tb, tr, network, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dcfg.Addr, dcfg.Passcode = addr, cfg.Passcode
	s, err := tr.Dial(ctx, dcfg)
	if err != nil {
		tb.Fatalf("Dial(%s): %v", dcfg.Addr, err)
	}
	tb.Cleanup(func() { s.Close() })
	return ep, s
}

// Pair opens a stream with ep.Open and accepts it with s.Accept, within
// ctx: c is the connector side, a the agent side. Both are closed when
// tb's test ends.
func Pair(tb testing.TB, ctx context.Context, ep sdk.Endpoint, s sdk.Session) (c, a net.Conn) {
	tb.Helper()
	return join(tb, ctx, ep.Open, s.Accept, "Endpoint.Open", "Session.Accept")
}

// PrivatePair opens a stream with s.Open and accepts it with ep.Accept,
// within ctx: c is the connector side, a the agent side. Both are closed
// when tb's test ends.
func PrivatePair(tb testing.TB, ctx context.Context, ep sdk.Endpoint, s sdk.Session) (c, a net.Conn) {
	tb.Helper()
	return join(tb, ctx, ep.Accept, s.Open, "Endpoint.Accept", "Session.Open")
}

func join(tb testing.TB, ctx context.Context, cf, af connFunc, cname, aname string) (c, a net.Conn) {
	tb.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ach := make(chan res, 1)
	go func() {
		conn, err := af(ctx)
		ach <- res{conn, err}
	}()
	c, cerr := cf(ctx)
	ar := <-ach
	for _, x := range []net.Conn{c, ar.c} {
		if x != nil {
			tb.Cleanup(func() { x.Close() })
		}
	}
	if cerr != nil || ar.err != nil {
		tb.Fatalf("pairing a stream: %s: %v; %s: %v", cname, cerr, aname, ar.err)
	}
	if c == nil || ar.c == nil {
		tb.Fatalf("pairing a stream: %s or %s returned a nil conn and no error", cname, aname)
	}
	return c, ar.c
}

// Echo checks that msg crosses c to a, then a to c, each within 20s.
func Echo(tb testing.TB, c, a net.Conn, msg string) {
	tb.Helper()
	if err := oneWay(c, a, []byte(msg)); err != nil {
		tb.Fatalf("%s: connector to agent: %v", msg, err)
	}
	if err := oneWay(a, c, []byte(msg)); err != nil {
		tb.Fatalf("%s: agent to connector: %v", msg, err)
	}
}

// ReadEnd reads c until it ends, for at most limit, and returns how long
// that took and the error it ended with: io.EOF for a clean end, a
// timeout error when it did not end in time.
func ReadEnd(c net.Conn, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return time.Since(start), err
}

// CheckStreams opens n streams at once from ep, accepts them on s (whose
// agent side echoes), sends 64 KiB of random bytes each way on each,
// half-closes, and checks every byte. If ep implements
// [sdk.StatsReporter], it checks that Stats reports at least one link and
// n streams while all are open, and no stream once all are closed.
func CheckStreams(tb testing.TB, ctx context.Context, ep sdk.Endpoint, s sdk.Session, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, 2*n)
	for range n { // the agent echoes every stream
		wg.Go(func() {
			a, err := s.Accept(ctx)
			if err != nil {
				errc <- fmt.Errorf("Session.Accept: %w", err)
				return
			}
			defer a.Close()
			if _, err := io.Copy(a, a); err != nil {
				errc <- fmt.Errorf("echo: %w", err)
				return
			}
			if cw, ok := a.(sdk.CloseWriter); ok {
				cw.CloseWrite()
			}
		})
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := ep.Open(ctx)
		if err != nil {
			tb.Fatalf("Endpoint.Open %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	sr, stats := ep.(sdk.StatsReporter)
	if stats {
		if st := sr.Stats(); st.Links < 1 || st.Streams != n {
			tb.Errorf("Stats() = %+v with %d streams open, want Links >= 1, Streams %d", st, n, n)
		}
	}
	for i, c := range conns {
		wg.Go(func() {
			defer CloseStream(ep, c)
			c.SetDeadline(time.Now().Add(time.Minute))
			msg := make([]byte, 64<<10)
			rand.Read(msg)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(msg)
				if cw, ok := c.(sdk.CloseWriter); ok && err == nil {
					err = cw.CloseWrite()
				}
				werr <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				errc <- fmt.Errorf("stream %d: read: %w", i, err)
				return
			}
			if err := <-werr; err != nil {
				errc <- fmt.Errorf("stream %d: write: %w", i, err)
				return
			}
			if !bytes.Equal(got, msg) {
				errc <- fmt.Errorf("stream %d: echoed %d bytes that differ from the %d sent", i, len(got), len(msg))
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		tb.Error(err)
	}
	if stats {
		if got := sr.Stats().Streams; got != 0 {
			tb.Errorf("Stats().Streams = %d after every stream closed, want 0", got)
		}
	}
}
