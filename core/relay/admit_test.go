package relay

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncLog is a goroutine-safe buffer for a text slog handler.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
}

// TestPublicWaitingCapPerSource: clients of one source beyond its cap are
// closed at once and counted as refused, with no log line per client;
// those within it wait for a link and are relayed.
func TestPublicWaitingCapPerSource(t *testing.T) {
	watchdog(t)
	var counters Counters
	logs := &syncLog{}
	ep := newChanEndpoint()
	addr, stop := servePublic(t, ep, PublicConfig{
		Counters: &counters, WaitTimeout: 30 * time.Second, MaxWaitingPerSource: 3,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	var waiting []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waiting = append(waiting, c)
	}
	// The three are accepted in order; wait until they wait for a link.
	time.Sleep(200 * time.Millisecond)
	const over = 20
	for range over {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // the wait timeout is 30 s
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a client over the per-source cap was not closed at once: %v", err)
		}
		c.Close()
	}
	if got := counters.Refused.Load(); got != over {
		t.Errorf("Refused = %d, want %d", got, over)
	}
	if got := logs.lines("public clients refused"); got > 1 {
		t.Errorf("%d refusal lines for %d refusals, want them aggregated", got, over)
	}
	// The waiting clients are still served (each by whichever link).
	for range waiting {
		a, b := tcpPair(t)
		ep.open <- a
		go func() { buf := make([]byte, 4); n, _ := b.Read(buf); b.Write(buf[:n]) }()
	}
	for _, c := range waiting {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := c.Read(got); err != nil || string(got) != "ping" {
			t.Fatalf("a waiting client was not relayed: %q %v", got, err)
		}
	}
	stop()
	if got := logs.lines("public clients refused"); got != 1 {
		t.Errorf("%d refusal lines after stop, want exactly one (aggregated)", got)
	}
	if !strings.Contains(logs.b.String(), "count=20") {
		t.Errorf("the refusal line does not carry count=20:\n%s", logs.b.String())
	}
}

// TestPublicWaitingCapPerMapping: MaxWaiting caps the clients waiting on a
// mapping whatever their source.
func TestPublicWaitingCapPerMapping(t *testing.T) {
	watchdog(t)
	var counters Counters
	addr, stop := servePublic(t, newChanEndpoint(), PublicConfig{Counters: &counters, WaitTimeout: 30 * time.Second, MaxWaiting: 2, MaxWaitingPerSource: -1})
	defer stop()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a client over the per-mapping cap was not closed at once: %v", err)
	}
	if got := counters.Refused.Load(); got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}
}

// errListener fails Accept with errs first, then delegates.
type errListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *errListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func opErr(e syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", e)}
}

// TestPublicAcceptSurvivesEMFILE: descriptor exhaustion does not stop the
// public port; a permanent accept error ends ServePublic with it.
func TestPublicAcceptSurvivesEMFILE(t *testing.T) {
	watchdog(t)
	ln := &errListener{Listener: listen(t), errs: []error{opErr(syscall.EMFILE), opErr(syscall.ENFILE), opErr(syscall.EMFILE)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServePublic(ctx, ln, dialEndpoint{echoServer(t)}, PublicConfig{}) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hi"))
	got := make([]byte, 2)
	if _, err := c.Read(got); err != nil || string(got) != "hi" {
		t.Fatalf("no relay after transient accept errors: %q %v", got, err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServePublic = %v", err)
	}

	bad := &errListener{Listener: listen(t), errs: []error{opErr(syscall.EINVAL)}}
	err = ServePublic(context.Background(), bad, dialEndpoint{"127.0.0.1:1"}, PublicConfig{})
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("ServePublic on a permanent error = %v, want EINVAL", err)
	}
}
