package streamkit_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/streamkit"
)

// TestListenerPutAccept: a connection given to Put reaches Accept; Fail
// makes Accept return its error, and Put then fails without taking the
// connection.
func TestListenerPutAccept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := streamkit.NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go l.Put(ctx, a)
	if got, err := l.Accept(); err != nil || got != a {
		t.Fatalf("Accept() = %v, %v; want the connection Put gave", got, err)
	}
	broke := errors.New("carrier broke")
	l.Fail(broke)
	if _, err := l.Accept(); !errors.Is(err, broke) {
		t.Fatalf("Accept after Fail: %v, want %v", err, broke)
	}
	if err := l.Put(ctx, b); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Put after Fail: %v, want net.ErrClosed", err)
	}
	if l.Addr().String() != "127.0.0.1:1" {
		t.Fatalf("Addr() = %v", l.Addr())
	}
}

// TestStopperOnCarrierFailure: a carrier whose listener fails for good
// stops the endpoint, which reports the cause (sdk.Stopper).
func TestStopperOnCarrierFailure(t *testing.T) {
	var ln *streamkit.Listener
	tr := streamkit.New(streamkit.Config{
		Name: "failing",
		Listen: func(context.Context, sdk.EndpointConfig) (net.Listener, error) {
			ln = streamkit.NewListener(&net.TCPAddr{})
			return ln, nil
		},
		Dial: streamkit.DialTCP,
	})
	ep, err := tr.Listen(t.Context(), sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	st := ep.(sdk.Stopper)
	ln.Fail(errors.New("http server died"))
	select {
	case <-st.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the carrier's listener failed")
	}
	if err := st.Err(); err == nil || !errors.Is(err, err) || err.Error() != "failing: accepting agent connections: http server died" {
		t.Fatalf("Err() = %v", err)
	}
}

// TestFailedByReason: refused agents are counted by reason.
func TestFailedByReason(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := streamkit.New(streamkit.Config{Name: "tcpkit", Listen: streamkit.ListenTCP, Dial: streamkit.DialTCP})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: addr, Passcode: "pw", MaxLinks: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"}); !errors.Is(err, sdk.ErrLinkLimit) {
		t.Fatalf("second agent: %v, want sdk.ErrLinkLimit", err)
	}
	if _, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "nope"}); !errors.Is(err, sdk.ErrBadPasscode) {
		t.Fatalf("wrong passcode: %v, want sdk.ErrBadPasscode", err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.1\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	c.Read(make([]byte, 1)) // the connector closes it
	c.Close()
	want := map[string]int64{sdk.FailureLimit: 1, sdk.FailureBadPasscode: 1, sdk.FailureProtocol: 1}
	deadline := time.Now().Add(10 * time.Second)
	var st sdk.EndpointStats
	for time.Now().Before(deadline) {
		if st = ep.(sdk.StatsReporter).Stats(); st.Failed == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Failed != 3 || st.Links != 1 {
		t.Fatalf("Stats() = %+v, want 1 link and 3 failures", st)
	}
	for k, n := range want {
		if st.FailedByReason[k] != n {
			t.Errorf("FailedByReason[%s] = %d, want %d (%v)", k, st.FailedByReason[k], n, st.FailedByReason)
		}
	}
}
