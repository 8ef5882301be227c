package yamux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	hyamux "github.com/hashicorp/yamux"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// setupVersion starts an endpoint and dials one session to it with a
// hello of the given version.
func setupVersion(t *testing.T, version byte) (sdk.Endpoint, *muxkit.Session) {
	t.Helper()
	tr, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, addr := transporttest.Listen(t, tr, "tcp", sdk.EndpointConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := tr.dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"}, version)
	if err != nil {
		t.Fatalf("dial in version %d: %v", version, err)
	}
	t.Cleanup(func() { s.Close() })
	return ep, s.(*muxkit.Session)
}

// flood writes to w until a write fails or limit bytes or 30 seconds have
// gone, and reports the error (nil when it stopped at a limit) and how
// much it wrote.
func flood(w net.Conn, limit int64, written *atomic.Int64) error {
	buf := make([]byte, 64<<10)
	end := time.Now().Add(30 * time.Second)
	for written.Load() < limit && time.Now().Before(end) {
		n, err := w.Write(buf)
		written.Add(int64(n))
		if err != nil {
			return err
		}
	}
	return nil
}

// agentStreams is how many streams the agent's yamux session still
// tracks, the control stream included.
func agentStreams(s *muxkit.Session) int { return s.Conn().(*ymux).s.NumStreams() }

// waitStreams waits up to 10s for the agent's yamux session to track want
// streams, and reports whether it did.
func waitStreams(s *muxkit.Session, want int) bool {
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if agentStreams(s) == want {
			return true
		}
	}
	return false
}

// TestAbort: on a version 4 session, closing a stream whose peer is still
// writing makes the peer's writes fail with ErrAborted at once (not after
// DrainTimeout), the peer reads io.EOF, and the stream is gone on both
// sides; in both directions.
func TestAbort(t *testing.T) {
	for _, connectorCloses := range []bool{true, false} {
		name := "agent closes"
		if connectorCloses {
			name = "connector closes"
		}
		t.Run(name, func(t *testing.T) {
			ep, s := setupVersion(t, muxkit.Version4)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, a := transporttest.Pair(t, ctx, ep, s)
			closer, writer := a, c
			if connectorCloses {
				closer, writer = c, a
			}
			var written atomic.Int64
			errc := make(chan error, 1)
			go func() { errc <- flood(writer, 1<<40, &written) }()
			if _, err := io.ReadFull(closer, make([]byte, 1<<20)); err != nil {
				t.Fatalf("reading the first MiB: %v", err)
			}
			closer.Close()
			closedAt := written.Load()
			select {
			case err := <-errc:
				if !errors.Is(err, ErrAborted) {
					t.Fatalf("the writer's Write after the peer's Close: %v, want ErrAborted", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("the writer still writes 20s after the peer closed (%d bytes since)", written.Load()-closedAt)
			}
			// At most what was in flight: a window and a frame.
			if more := written.Load() - closedAt; more > DefaultMaxStreamWindowSize+(1<<20) {
				t.Errorf("the writer wrote %d bytes after the peer closed, want at most a window", more)
			}
			if _, err := writer.Write([]byte("x")); !errors.Is(err, ErrAborted) {
				t.Errorf("a later Write: %v, want ErrAborted", err)
			}
			if _, err := transporttest.ReadEnd(writer, 10*time.Second); err != io.EOF {
				t.Errorf("the writer's read side: %v, want io.EOF", err)
			}
			writer.Close()
			if !waitStreams(s, 1) {
				t.Errorf("the agent's session still tracks %d streams, want 1 (the control stream)", agentStreams(s))
			}
		})
	}
}

// TestAbortKeepsReads: the side told to stop writing still reads what its
// peer wrote before it closed, then io.EOF.
func TestAbortKeepsReads(t *testing.T) {
	ep, s := setupVersion(t, muxkit.Version4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, a := transporttest.Pair(t, ctx, ep, s)
	msg := bytes.Repeat([]byte("last words "), 1000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.Close() // a's bytes unread: the agent is told to stop writing
	got, err := io.ReadAll(io.LimitReader(a, 1<<20))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the agent read %d bytes, %v; want the %d written before Close, then io.EOF", len(got), err, len(msg))
	}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := a.Write([]byte("x")); errors.Is(err, ErrAborted) {
			break
		} else if time.Now().After(end) {
			t.Fatalf("the agent's Write 10s after the connector closed: %v, want ErrAborted", err)
		}
	}
}

// TestNoAbortAfterEOF: a stream closed after reading the peer's io.EOF
// sends no abort: the peer, which already closed its side for writing,
// sees nothing unusual.
func TestNoAbortAfterEOF(t *testing.T) {
	ep, s := setupVersion(t, muxkit.Version4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, a := transporttest.Pair(t, ctx, ep, s)
	a.(sdk.CloseWriter).CloseWrite()
	if _, err := transporttest.ReadEnd(c, 10*time.Second); err != io.EOF {
		t.Fatalf("connector read: %v, want io.EOF", err)
	}
	c.Close()
	if _, err := transporttest.ReadEnd(a, 10*time.Second); err != io.EOF {
		t.Fatalf("agent read: %v, want io.EOF", err)
	}
	if w, ok := a.(interface{ NetConn() net.Conn }); ok {
		a = w.NetConn()
	}
	if a.(*stream).aborted.Load() {
		t.Error("the agent's stream was aborted although the connector read it to its end")
	}
}

// TestNoAbortBeforeVersion4 pins the behaviour with agents of earlier
// releases (hello versions 1 to 3): no abort crosses; the connector
// discards what the agent still writes after Close, so the agent's writes
// go on (well past a window) without error, and its stream stays open.
func TestNoAbortBeforeVersion4(t *testing.T) {
	for _, v := range []byte{muxkit.Version1, muxkit.Version3} {
		t.Run(string('0'+v), func(t *testing.T) {
			ep, s := setupVersion(t, v)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, a := transporttest.Pair(t, ctx, ep, s)
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(a, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			c.Close()
			var written atomic.Int64
			const limit = 3 * DefaultMaxStreamWindowSize
			if err := flood(a, limit, &written); err != nil || written.Load() < limit {
				t.Fatalf("a version %d agent wrote %d bytes after the connector's Close, %v; want %d and no error (drained)", v, written.Load(), err, limit)
			}
			if n := agentStreams(s); n != 2 {
				t.Errorf("the agent's session tracks %d streams, want 2 (control and the drained one)", n)
			}
		})
	}
}

// TestControlProtocolError: on a version 4 session, a control message
// that is no abort (here a go-away sent by the agent) closes the session.
func TestControlProtocolError(t *testing.T) {
	_, s := setupVersion(t, muxkit.Version4)
	m := s.Conn().(*ymux)
	// The connector may close the session before yamux's Write has
	// collected its own send result; Write then says the session shut
	// down, which is the outcome under test, not a failure to send.
	if _, err := m.ctrl.Write([]byte{ctrlGoAway}); err != nil && !errors.Is(err, hyamux.ErrSessionShutdown) {
		t.Fatal(err)
	}
	select {
	case <-m.s.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("the session is still open 10s after the agent sent a go-away")
	}
}

// TestOriginStreamWaits: a stream that carries an origin to the agent
// keeps WaitRead (sdk/pipe then holds no buffer while it is idle).
func TestOriginStreamWaits(t *testing.T) {
	ep, s := setupVersion(t, muxkit.Version4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := sdk.Origin{Client: netip.MustParseAddrPort("127.0.0.2:40123"), Local: netip.MustParseAddrPort("127.0.0.1:7001"), Proxy: sdk.ProxyV1}
	c, a := transporttest.Pair(t, sdk.WithOrigin(ctx, o), ep, s)
	if got, ok := a.(sdk.OriginStream); !ok {
		t.Fatalf("%T reports no origin", a)
	} else if g, ok := got.Origin(); !ok || g != o {
		t.Fatalf("origin %+v, %v; want %+v", g, ok, o)
	}
	w, ok := a.(interface{ WaitRead() error })
	if !ok {
		t.Fatalf("%T has no WaitRead", a)
	}
	c.Write([]byte("x"))
	if err := w.WaitRead(); err != nil {
		t.Fatalf("WaitRead with a byte there: %v", err)
	}
}

// TestAbortBeforeAccept: a stream the connector opens and closes before
// the agent accepts it is aborted once accepted: the agent reads what was
// written, then io.EOF, and its writes fail with ErrAborted at once.
func TestAbortBeforeAccept(t *testing.T) {
	ep, s := setupVersion(t, muxkit.Version4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	m := s.Conn().(*ymux)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m.streams.mu.Lock()
		n := len(m.streams.early)
		m.streams.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the agent keeps %d early aborts 10s after the connector's Close, want 1", n)
		}
	}
	a, err := s.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write([]byte("x")); !errors.Is(err, ErrAborted) {
		t.Errorf("the agent's Write on a stream closed before it was accepted: %v, want ErrAborted", err)
	}
	got, err := io.ReadAll(io.LimitReader(a, 1<<10))
	if err != nil || string(got) != "early" {
		t.Errorf("the agent read %q, %v; want \"early\" then io.EOF", got, err)
	}
	if !waitStreams(s, 1) {
		t.Errorf("the agent's session still tracks %d streams, want 1 (the control stream)", agentStreams(s))
	}
	m.streams.mu.Lock()
	defer m.streams.mu.Unlock()
	if len(m.streams.early) != 0 {
		t.Errorf("%d early aborts kept after the accept, want 0", len(m.streams.early))
	}
}

// TestAbortOfClosedStreamIsDropped: an abort of a stream already closed
// here is not kept (the early aborts stay bounded).
func TestAbortOfClosedStreamIsDropped(t *testing.T) {
	m := &ymux{version: muxkit.Version4, agent: true}
	m.streams.accepted = 8
	m.streams.abort(6, true) // accepted and closed already
	m.streams.abort(5, false)
	for id := uint32(10); id < 10+2*(maxEarly+10); id += 2 {
		m.streams.abort(id, true)
	}
	if n := len(m.streams.early); n != maxEarly {
		t.Errorf("%d early aborts kept, want %d (none for closed or own streams, and at most maxEarly)", n, maxEarly)
	}
	if _, ok := m.streams.early[6]; ok {
		t.Error("the abort of a stream closed already was kept")
	}
}
