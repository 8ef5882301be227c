package transporttest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// waiter is what sdk/pipe looks for to copy without an idle buffer.
type waiter interface{ WaitRead() error }

// CheckWaitRead checks the WaitRead method of the streams of a transport
// that has one (as transports/quic and transports/yamux do; sdk/pipe
// waits with it, so that an idle stream holds no copy buffer), on streams
// ep opens and s accepts: it blocks while nothing is there, returns once
// bytes arrive without taking them, returns nil at the end of the stream
// (Read then says io.EOF), honours the read deadline and is ended by
// Close with net.ErrClosed; on the agent's side, then on the connector's.
func CheckWaitRead(t *testing.T, ep sdk.Endpoint, s sdk.Session) {
	t.Helper()
	for _, side := range []string{"agent", "connector"} {
		pair := func(ctx context.Context) (c, a net.Conn) {
			c, a = Pair(t, ctx, ep, s)
			if side == "connector" {
				return a, c
			}
			return c, a
		}
		t.Run(side, func(t *testing.T) { checkWaitRead(t, pair) })
	}
}

// checkWaitRead is CheckWaitRead on the a side of the pairs from pair,
// c writing.
func checkWaitRead(t *testing.T, pair func(context.Context) (c, a net.Conn)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, a := pair(ctx)
	w, ok := a.(waiter)
	if !ok {
		t.Fatalf("%T has no WaitRead", a)
	}
	done := make(chan error, 1)
	go func() { done <- w.WaitRead() }()
	select {
	case err := <-done:
		t.Fatalf("WaitRead returned %v with nothing sent", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitRead = %v once bytes arrived", err)
		}
	case <-ctx.Done():
		t.Fatal("WaitRead did not return once bytes arrived")
	}
	buf := make([]byte, 8)
	if n, err := io.ReadAtLeast(a, buf, 2); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("Read after WaitRead = %q, %v; want \"hi\" (WaitRead must not take bytes)", buf[:n], err)
	}
	c.(sdk.CloseWriter).CloseWrite()
	if err := w.WaitRead(); err != nil {
		t.Fatalf("WaitRead at the end of the stream = %v, want nil", err)
	}
	if n, err := a.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at the end of the stream = %d, %v; want 0, io.EOF", n, err)
	}
	c.Close()
	a.Close()

	c, a = pair(ctx)
	defer c.Close()
	w = a.(waiter)
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := w.WaitRead(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitRead past the read deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	a.SetReadDeadline(time.Time{})
	go func() { done <- w.WaitRead() }()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WaitRead ended by Close = %v, want net.ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not end WaitRead")
	}
}
