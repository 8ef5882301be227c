package transporttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

func testConfig(t *testing.T, e *env) {
	if name := e.tr.Name(); !sdk.ValidName(name) {
		t.Errorf("Name() = %q, which is not a valid transport name (sdk.ValidName)", name)
	}
	ctx := e.ctx(30 * time.Second)
	good := e.endpointConfig()
	for _, tc := range []struct {
		name string
		mod  func(*sdk.EndpointConfig)
	}{
		{"empty Addr", func(c *sdk.EndpointConfig) { c.Addr = "" }},
		{"empty Passcode", func(c *sdk.EndpointConfig) { c.Addr = "127.0.0.1:1"; c.Passcode = "" }},
		{"negative MaxLinks", func(c *sdk.EndpointConfig) { c.Addr = "127.0.0.1:1"; c.MaxLinks = -1 }},
	} {
		cfg := good
		tc.mod(&cfg)
		ep, err := e.tr.Listen(ctx, cfg)
		if ep != nil {
			e.track(ep)
		}
		if !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("Listen with %s: err = %v, want sdk.ErrInvalidConfig", tc.name, err)
		}
	}
	dc := e.dialConfig("127.0.0.1:1", "")
	s, err := e.tr.Dial(ctx, dc)
	if s != nil {
		e.track(s)
	}
	if !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("Dial with an empty Passcode: err = %v, want sdk.ErrInvalidConfig", err)
	}

	// A taken address is a bind error the caller can recognise.
	var taken string
	if e.opts.Network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.track(pc)
		taken = pc.LocalAddr().String()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.track(ln)
		taken = ln.Addr().String()
	}
	cfg := good
	cfg.Addr = taken
	ep, err := e.tr.Listen(ctx, cfg)
	if ep != nil {
		e.track(ep)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen on a taken address: err = %v, want one wrapping syscall.EADDRINUSE", err)
	}
}

func testBasicIO(t *testing.T, e *env) {
	ep, s := e.setup()
	c, a := e.pair(ep, s)
	if err := exchange(c, a, "first"); err != nil {
		t.Fatalf("first stream: %v", err)
	}
	// The agent may speak first on a fresh stream (server-speaks-first
	// protocols such as SSH and SMTP).
	c2, a2 := e.pair(ep, s)
	if err := oneWay(a2, c2, []byte("agent speaks first")); err != nil {
		t.Fatalf("second stream, agent first: %v", err)
	}
	if err := oneWay(c2, a2, []byte("connector answers")); err != nil {
		t.Fatalf("second stream, connector answer: %v", err)
	}
	// Streams are used once: a new pair after closing one still works.
	c.Close()
	a.Close()
	c3, a3 := e.pair(ep, s)
	if err := exchange(c3, a3, "third"); err != nil {
		t.Fatalf("stream after closing the first: %v", err)
	}
	for _, conn := range []net.Conn{c3, a3} {
		if conn.LocalAddr() == nil || conn.RemoteAddr() == nil {
			t.Errorf("%T: LocalAddr or RemoteAddr is nil", conn)
		}
	}
}

func testPingPong(t *testing.T, e *env) {
	ep, s := e.setup()
	c, a := e.pair(ep, s)
	const rounds = 300
	errc := make(chan error, 1)
	go func() { // the agent echoes
		buf := make([]byte, 64)
		for i := range rounds {
			n, err := readMsg(a, buf)
			if err != nil {
				errc <- fmt.Errorf("agent round %d: %w", i, err)
				return
			}
			if _, err := a.Write(buf[:n]); err != nil {
				errc <- fmt.Errorf("agent round %d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, 64)
	err := within(60*time.Second, func() { c.Close(); a.Close() }, func() error {
		for i := range rounds {
			msg := fmt.Appendf(nil, "ping %04d", i)
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("connector round %d: write: %w", i, err)
			}
			n, err := readMsg(c, buf[:len(msg)])
			if err != nil {
				return fmt.Errorf("connector round %d: %w", i, err)
			}
			if string(buf[:n]) != string(msg) {
				return fmt.Errorf("round %d: echoed %q, want %q", i, buf[:n], msg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// readMsg reads a 9-byte ping message.
func readMsg(c net.Conn, buf []byte) (int, error) {
	const n = len("ping 0000")
	got := 0
	for got < n {
		m, err := c.Read(buf[got:n])
		got += m
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func testBadPasscode(t *testing.T, e *env) {
	cfg := e.endpointConfig()
	ep, addr := e.listen(cfg)
	for _, op := range []string{"Accept", "Open"} {
		err := refusal(e, e.dialConfig(addr, "wrong-"+cfg.Passcode), op)
		if !errors.Is(err, sdk.ErrBadPasscode) {
			t.Errorf("agent with a wrong passcode (Dial, then %s): err = %v, want sdk.ErrBadPasscode", op, err)
		}
	}
	// No stream reaches an agent that was refused.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := ep.Open(ctx); err == nil {
		e.track(c)
		t.Errorf("Endpoint.Open returned a stream though only refused agents dialled")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Endpoint.Open with no agent: err = %v, want context.DeadlineExceeded", err)
	}
	// The right passcode is accepted.
	s := e.dial(e.dialConfig(addr, cfg.Passcode))
	c, a := e.pair(ep, s)
	if err := exchange(c, a, "right passcode"); err != nil {
		t.Fatal(err)
	}
}

// refusal dials cfg and calls op on the session, returning the error that
// surfaced first (from Dial or op), or nil if both succeeded.
func refusal(e *env, cfg sdk.DialConfig, op string) error {
	ctx := e.ctx(10 * time.Second)
	s, err := e.tr.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	e.track(s)
	var conn net.Conn
	if op == "Open" {
		conn, err = s.Open(ctx)
	} else {
		conn, err = s.Accept(ctx)
	}
	if conn != nil {
		e.track(conn)
	}
	return err
}

func testLinkLimit(t *testing.T, e *env) {
	cfg := e.endpointConfig()
	cfg.MaxLinks = 1
	ep, addr := e.listen(cfg)
	s1 := e.dial(e.dialConfig(addr, cfg.Passcode))
	c, a := e.pair(ep, s1)
	if err := exchange(c, a, "first agent"); err != nil {
		t.Fatalf("first agent: %v", err)
	}
	// A second agent is over the limit.
	err := refusal(e, e.dialConfig(addr, cfg.Passcode), "Accept")
	if !errors.Is(err, sdk.ErrLinkLimit) {
		t.Errorf("second agent over MaxLinks=1: err = %v, want sdk.ErrLinkLimit", err)
	}
	// The first agent's stream is unharmed by the refusal.
	if err := exchange(c, a, "after refusal"); err != nil {
		t.Errorf("first agent after the second was refused: %v", err)
	}
	// Once the first agent leaves, its place is free again.
	CloseStream(ep, c)
	a.Close()
	s1.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx := e.ctx(20 * time.Second)
		s2, err := e.tr.Dial(ctx, e.dialConfig(addr, cfg.Passcode))
		if err == nil {
			e.track(s2)
			var c2, a2 net.Conn
			c2, a2, err = tryPair(ctx, ep, s2)
			if err == nil {
				e.track(c2)
				e.track(a2)
				if err := exchange(c2, a2, "after the first left"); err != nil {
					t.Fatalf("agent admitted after the first left: %v", err)
				}
				return
			}
			s2.Close()
		}
		if !errors.Is(err, sdk.ErrLinkLimit) || time.Now().After(deadline) {
			t.Fatalf("agent dialling after the first agent closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the endpoint may not have noticed yet
	}
}

// tryPair is pair that returns errors instead of failing.
func tryPair(ctx context.Context, ep sdk.Endpoint, s sdk.Session) (c, a net.Conn, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		aerr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, aerr = s.Accept(ctx)
		if aerr != nil {
			cancel()
		}
	}()
	c, err = ep.Open(ctx)
	if err != nil {
		cancel() // unblocks the Accept; its error is read after Wait
	}
	wg.Wait()
	if err != nil || aerr != nil {
		if c != nil {
			c.Close()
		}
		if a != nil {
			a.Close()
		}
		if aerr != nil {
			return nil, nil, aerr
		}
		return nil, nil, err
	}
	return c, a, nil
}
