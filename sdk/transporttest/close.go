package transporttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

func testHalfClose(t *testing.T, e *env) {
	ep, s := e.setup()
	for _, dir := range []struct {
		name   string
		first  bool // connector closes its write side first
		prefix string
	}{{"connector first", true, "c"}, {"agent first", false, "a"}} {
		c, a := e.pair(ep, s)
		closer, other := c, a
		if !dir.first {
			closer, other = a, c
		}
		if err := halfClose(closer, other); err != nil {
			t.Errorf("%s: %v", dir.name, err)
		}
	}
}

// halfClose writes on x, half-closes it, and checks y reads the bytes and
// then EOF while y→x still works, and that y's own half-close reaches x.
func halfClose(x, y net.Conn) error {
	xw, ok := x.(sdk.CloseWriter)
	if !ok {
		return fmt.Errorf("stream %T does not implement sdk.CloseWriter", x)
	}
	yw, ok := y.(sdk.CloseWriter)
	if !ok {
		return fmt.Errorf("stream %T does not implement sdk.CloseWriter", y)
	}
	msg := pattern(7, 100<<10)
	if err := writeAll(x, msg); err != nil {
		return err
	}
	if err := xw.CloseWrite(); err != nil {
		return fmt.Errorf("CloseWrite: %w", err)
	}
	var got []byte
	err := within(20*time.Second, func() { y.Close() }, func() error {
		var err error
		got, err = io.ReadAll(y)
		return err
	})
	if err != nil {
		return fmt.Errorf("reading to EOF after the peer's CloseWrite: %w", err)
	}
	if string(got) != string(msg) {
		return fmt.Errorf("read %d bytes before EOF, want the %d sent", len(got), len(msg))
	}
	// The other direction is still open.
	if err := oneWay(y, x, []byte("reply after the half-close")); err != nil {
		return fmt.Errorf("other direction after a half-close: %w", err)
	}
	if err := yw.CloseWrite(); err != nil {
		return fmt.Errorf("second CloseWrite: %w", err)
	}
	err = within(20*time.Second, func() { x.Close() }, func() error {
		rest, err := io.ReadAll(x)
		if err == nil && len(rest) > 0 {
			return fmt.Errorf("read %d unexpected bytes", len(rest))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("reading EOF after both half-closes: %w", err)
	}
	return nil
}

func testCloseUnblocks(t *testing.T, e *env) {
	const d = 20 * time.Second
	ep, s := e.setup()

	// Closing a stream at either end reaches the other end.
	c, a := e.pair(ep, s)
	c.Close()
	if err := readEnds(a, d); err != nil {
		t.Errorf("connector closed a stream; the agent's Read: %v", err)
	}
	c, a = e.pair(ep, s)
	a.Close()
	if err := readEnds(c, d); err != nil {
		t.Errorf("agent closed a stream; the connector's Read: %v", err)
	}
	// A Read blocked on a stream is unblocked by its own Close.
	c, _ = e.pair(ep, s)
	if err := within(d, nil, func() error {
		time.AfterFunc(100*time.Millisecond, func() { c.Close() })
		_, err := c.Read(make([]byte, 1))
		if err == nil {
			return errors.New("Read on a closed stream returned no error")
		}
		return nil
	}); err != nil {
		t.Errorf("closing a stream during its Read: %v", err)
	}

	// Endpoint.Close unblocks pending Open and Accept with net.ErrClosed,
	// and the agent's pending Accept fails.
	long := e.ctx(e.opts.Timeout)
	cfg := e.endpointConfig()
	cfg.Mode = sdk.ModePrivate
	ep2, addr2 := e.listen(cfg)
	s2 := e.dial(e.dialConfig(addr2, cfg.Passcode))
	c2, a2 := e.pair(ep2, s2) // the agent is linked
	c2.Close()
	a2.Close()
	pending := map[string]chan error{}
	for name, f := range map[string]connFunc{"Endpoint.Accept": ep2.Accept, "Session.Accept": s2.Accept} {
		ch := make(chan error, 1)
		pending[name] = ch
		go func() {
			conn, err := f(long)
			if conn != nil {
				e.track(conn)
			}
			ch <- err
		}()
	}
	// Endpoint.Open has an agent to reach; a second endpoint with none
	// gives it a call that blocks.
	ep3, _ := e.listen(e.endpointConfig())
	openErr := make(chan error, 1)
	go func() {
		conn, err := ep3.Open(long)
		if conn != nil {
			e.track(conn)
		}
		openErr <- err
	}()
	pending["Endpoint.Open"] = openErr
	time.Sleep(200 * time.Millisecond)
	if err := within(d, nil, func() error { ep2.Close(); ep3.Close(); return nil }); err != nil {
		t.Fatalf("Endpoint.Close: %v", err)
	}
	for name, ch := range pending {
		select {
		case err := <-ch:
			switch {
			case err == nil:
				t.Errorf("%s pending during Endpoint.Close returned a stream and no error", name)
			case name != "Session.Accept" && !errors.Is(err, net.ErrClosed):
				t.Errorf("%s pending during Endpoint.Close: err = %v, want net.ErrClosed", name, err)
			}
		case <-time.After(d):
			t.Errorf("%s pending during Endpoint.Close did not return within %v", name, d)
		}
	}
	for name, f := range map[string]connFunc{"Open": ep2.Open, "Accept": ep2.Accept} {
		err := within(d, nil, func() error {
			conn, err := f(long)
			if conn != nil {
				e.track(conn)
			}
			if !errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("err = %v, want net.ErrClosed", err)
			}
			return nil
		})
		if err != nil {
			t.Errorf("Endpoint.%s after Close: %v", name, err)
		}
	}
	if err := within(d, nil, func() error { ep2.Close(); return nil }); err != nil {
		t.Errorf("second Endpoint.Close: %v", err)
	}

	// Session.Close unblocks a pending Session.Accept; later calls fail.
	ch := make(chan error, 1)
	go func() {
		conn, err := s.Accept(long)
		if conn != nil {
			e.track(conn)
		}
		ch <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := within(d, nil, func() error { s.Close(); return nil }); err != nil {
		t.Fatalf("Session.Close: %v", err)
	}
	select {
	case err := <-ch:
		if err == nil {
			t.Errorf("Session.Accept pending during Session.Close returned no error")
		}
	case <-time.After(d):
		t.Errorf("Session.Accept pending during Session.Close did not return within %v", d)
	}
	for name, f := range map[string]connFunc{"Open": s.Open, "Accept": s.Accept} {
		err := within(d, nil, func() error {
			conn, err := f(long)
			if conn != nil {
				e.track(conn)
				return errors.New("returned a stream")
			}
			if err == nil {
				return errors.New("returned no error")
			}
			return nil
		})
		if err != nil {
			t.Errorf("Session.%s after Close: %v", name, err)
		}
	}
	if err := within(d, nil, func() error { s.Close(); return nil }); err != nil {
		t.Errorf("second Session.Close: %v", err)
	}
	// The endpoint hands no live stream to the agent that left: Open
	// either waits (for another agent) or returns a stream that is dead.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if conn, err := ep.Open(ctx); err == nil {
		e.track(conn)
		conn.Write([]byte("anyone there?"))
		if err := readEnds(conn, d); err != nil {
			t.Errorf("Endpoint.Open after the only agent closed its session returned a live stream: %v", err)
		}
	}
}

func testStreamsOutliveClose(t *testing.T, e *env) {
	ep, s := e.setup()
	c, a := e.pair(ep, s)
	cfg := e.endpointConfig()
	cfg.Mode = sdk.ModePrivate
	ep2, addr2 := e.listen(cfg)
	s2 := e.dial(e.dialConfig(addr2, cfg.Passcode))
	c2, a2 := e.privatePair(ep2, s2)
	ep.Close()
	ep2.Close()
	s.Close()
	s2.Close()
	if err := exchange(c, a, "after Endpoint.Close and Session.Close"); err != nil {
		t.Errorf("a stream the endpoint opened, after both halves closed: %v", err)
	}
	if err := exchange(c2, a2, "after Endpoint.Close and Session.Close"); err != nil {
		t.Errorf("a stream the agent opened, after both halves closed: %v", err)
	}
}

func testContextCancel(t *testing.T, e *env) {
	const d = 10 * time.Second
	check := func(name string, f connFunc, want error) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		err := within(d, nil, func() error {
			conn, err := f(ctx)
			if conn != nil {
				e.track(conn)
				return errors.New("returned a stream")
			}
			if err == nil {
				return errors.New("returned no error")
			}
			if want != nil && !errors.Is(err, want) {
				return fmt.Errorf("err = %v, want %v", err, want)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s, ctx cancelled while it blocks: %v", name, err)
		}
	}
	ep, s := e.setup()
	check("Endpoint.Accept", ep.Accept, context.Canceled)
	check("Session.Accept", s.Accept, context.Canceled)
	ep2, _ := e.listen(e.endpointConfig())
	check("Endpoint.Open (no agent)", ep2.Open, context.Canceled)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := ep2.Open(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Endpoint.Open past its deadline: err = %v, want context.DeadlineExceeded", err)
	}

	// Against a connector that never answers, Dial (if it connects
	// eagerly) or the session's first Accept and Open block until ctx ends.
	hole, closeHole := blackHole(t, e.opts.Network)
	defer closeHole()
	cfg := e.dialConfig(hole, "passcode")
	var sess sdk.Session
	dctx, dcancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, dcancel)
	var dialErr error
	err := within(d, nil, func() error {
		sess, dialErr = e.tr.Dial(dctx, cfg)
		return nil
	})
	if err != nil {
		t.Fatalf("Dial to a silent connector, ctx cancelled: %v", err)
	}
	if dialErr != nil || sess == nil {
		if sess != nil {
			sess.Close()
		}
		return // Dial blocked until ctx was cancelled: checked.
	}
	e.track(sess)
	check("Session.Accept (silent connector)", sess.Accept, nil)
	check("Session.Open (silent connector)", sess.Open, nil)
}
