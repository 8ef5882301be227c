package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pair opens a stream from ep and accepts it on s.
func pair(t *testing.T, ctx context.Context, ep sdk.Endpoint, s sdk.Session) (c, a net.Conn) {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		a, err := s.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- a
	}()
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a = <-got
	if a == nil {
		t.FailNow()
	}
	t.Cleanup(func() { a.Close() })
	return c, a
}

// TestAgentLearnsThreshold: an agent that sets no timings of its own is
// told the endpoint's threshold, beats at a quarter of it and keeps its
// session idle for several thresholds; the streams a session carried are
// forgotten once closed.
func TestAgentLearnsThreshold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const th = time.Second
	tr := New()
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: freeAddr(t), Passcode: "pw", HeartbeatThreshold: th})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	addr := ep.(*endpoint).ln.Addr().String()
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess := s.(*session)
	deadline := time.Now().Add(5 * time.Second)
	for sess.HeartbeatThreshold() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := sess.HeartbeatThreshold(); got != th {
		t.Fatalf("HeartbeatThreshold() = %v, want the endpoint's %v", got, th)
	}
	if got := sess.interval(); got != 250*time.Millisecond {
		t.Errorf("beat interval %v, want 250ms", got)
	}
	for range 5 {
		c, a := pair(t, ctx, ep, s)
		c.Close()
		a.Close()
	}
	time.Sleep(3 * th)
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 1 {
		t.Fatalf("after 3 thresholds: %d links, want the 1 session kept alive", st.Links)
	}
	if n := sess.streams.len(); n != 0 {
		t.Errorf("the session still tracks %d closed streams", n)
	}
	e := ep.(*endpoint)
	e.mu.Lock()
	for _, ss := range e.sessions {
		if n := ss.streams.len(); n != 0 {
			t.Errorf("the connector's session still tracks %d closed streams", n)
		}
	}
	e.mu.Unlock()
}

// TestAbortIsNotEOF: a stream closed reads io.EOF at its peer; a stream
// aborted (as a silent session's are) reads io.ErrUnexpectedEOF.
func TestAbortIsNotEOF(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := New()
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: freeAddr(t), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: ep.(*endpoint).ln.Addr().String(), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		end  func(net.Conn) error
		want error
	}{
		{"Close", net.Conn.Close, io.EOF},
		{"Abort", func(c net.Conn) error { return c.(*stream).Abort() }, io.ErrUnexpectedEOF},
	} {
		c, a := pair(t, ctx, ep, s)
		a.Write([]byte("bytes"))
		tc.end(a)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err == nil {
			err = io.EOF
		}
		if string(got) != "bytes" || !errors.Is(err, tc.want) {
			t.Errorf("%s: the peer read %q then %v, want the bytes then %v", tc.name, got, err, tc.want)
		}
	}
}
