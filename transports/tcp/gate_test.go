package tcp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
)

// logRecorder keeps every log record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records at level have a message containing msg.
func (r *logRecorder) count(level slog.Level, msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Level == level && strings.Contains(rec.Message, msg) {
			n++
		}
	}
	return n
}

// gateWatchdog panics a test that runs over d, showing every goroutine.
func gateWatchdog(t testing.TB, d time.Duration) {
	timer := time.AfterFunc(d, func() { panic(t.Name() + ": watchdog: ran over " + d.String()) })
	t.Cleanup(func() { timer.Stop() })
}

// faultyListener returns errs from Accept, one per call, before
// delegating to the real listener.
type faultyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *faultyListener) Accept() (net.Conn, error) {
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

func acceptErrno(e syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", e)}
}

func gateEndpoint(t *testing.T, errs []error, maxLinks int, log *slog.Logger) (*endpoint, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcfg := DefaultConfig()
	tcfg.HandshakeTimeout = 5 * time.Second
	ep := newEndpoint(&faultyListener{Listener: ln, errs: errs}, sdk.EndpointConfig{
		Addr: ln.Addr().String(), Passcode: "secret-passcode", MaxLinks: maxLinks, Logger: log,
	}, &tcfg)
	t.Cleanup(func() { ep.Close() })
	return ep, ln.Addr().String()
}

// legacyDial opens a legacy link: the passcode, then AUTHORIZED.
func legacyDial(addr, pass string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, pass); err != nil {
		c.Close()
		return nil, err
	}
	got := make([]byte, len(legacyAuthorized))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != legacyAuthorized {
		c.Close()
		return nil, errors.Join(errors.New("not authorized"), err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// TestAcceptSurvivesTransientErrors: EMFILE and friends from Accept do not
// stop the endpoint; it backs off, logs one WARN for the episode, and
// admits the next agent.
func TestAcceptSurvivesTransientErrors(t *testing.T) {
	gateWatchdog(t, time.Minute)
	rec := &logRecorder{}
	errs := []error{acceptErrno(syscall.EMFILE), acceptErrno(syscall.EMFILE), acceptErrno(syscall.ENFILE),
		acceptErrno(syscall.ENOBUFS), acceptErrno(syscall.ENOMEM), acceptErrno(syscall.ECONNABORTED), acceptErrno(syscall.EMFILE)}
	ep, addr := gateEndpoint(t, errs, 0, slog.New(rec))
	c, err := legacyDial(addr, "secret-passcode")
	if err != nil {
		t.Fatalf("agent refused after transient accept errors: %v", err)
	}
	c.Close()
	select {
	case <-ep.Done():
		t.Fatalf("endpoint stopped: %v", ep.Err())
	default:
	}
	if got := rec.count(slog.LevelWarn, "accepting agent connections failed"); got != 1 {
		t.Errorf("%d WARN lines for one episode of %d errors, want 1", got, len(errs))
	}
	if got := rec.count(slog.LevelInfo, "accepting agent connections works again"); got != 1 {
		t.Errorf("%d INFO lines for the recovery, want 1", got)
	}
}

// TestAcceptStopsOnPermanentError: an error that is not transient stops
// the endpoint, and Done and Err say so.
func TestAcceptStopsOnPermanentError(t *testing.T) {
	gateWatchdog(t, time.Minute)
	ep, _ := gateEndpoint(t, []error{acceptErrno(syscall.EINVAL)}, 0, nil)
	select {
	case <-ep.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after a permanent accept error")
	}
	if err := ep.Err(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Err() = %v, want it to wrap EINVAL", err)
	}
	ep.Close()
	if !errors.Is(ep.Err(), syscall.EINVAL) {
		t.Errorf("Close replaced the cause: %v", ep.Err())
	}
}

// TestCloseClosesDone: Done is closed by Close, with a nil Err.
func TestCloseClosesDone(t *testing.T) {
	ep, _ := gateEndpoint(t, nil, 0, nil)
	ep.Close()
	select {
	case <-ep.Done():
	default:
		t.Fatal("Done open after Close")
	}
	if err := ep.Err(); err != nil {
		t.Fatalf("Err() = %v after Close, want nil", err)
	}
}

// TestPendingHandshakesCappedPerSource: one source holding its cap of
// silent connections gets the next one closed at once, counted; once they
// go, an agent links.
func TestPendingHandshakesCappedPerSource(t *testing.T) {
	gateWatchdog(t, 2*time.Minute)
	ep, addr := gateEndpoint(t, nil, 1, nil)
	limit := pendingCapForTest(1)
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	// Wait until the endpoint holds them all.
	deadline := time.Now().Add(20 * time.Second)
	for ep.gate.Pending() < limit {
		if time.Now().After(deadline) {
			t.Fatalf("endpoint holds %d pending handshakes, want %d", ep.gate.Pending(), limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(3 * time.Second)) // far below the 5 s handshake timeout
	if _, err := over.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection over the per-source cap was not closed at once: %v", err)
	}
	if got := ep.Stats().Failed; got < 1 {
		t.Errorf("Stats().Failed = %d, want the refusal counted", got)
	}
	for _, c := range silent {
		c.Close()
	}
	silent = nil
	deadline = time.Now().Add(20 * time.Second)
	for {
		c, err := legacyDial(addr, "secret-passcode")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agent admitted after the silent connections left: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pendingCapForTest is the per-source cap of an endpoint of maxLinks.
func pendingCapForTest(maxLinks int) int { return admission.PendingPerSource(maxLinks) }

// TestSixtyLegacyLinksFromOneSource: a legacy agent opening the
// Controller's 60 links at once, from one address, gets every one, even
// when all 60 handshakes are pending at the same time (as with slow TLS
// handshakes after a connector restart).
func TestSixtyLegacyLinksFromOneSource(t *testing.T) {
	gateWatchdog(t, 2*time.Minute)
	ep, addr := gateEndpoint(t, nil, 60, nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 60 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ep.gate.Pending() < 60 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes pending, want all 60", ep.gate.Pending())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var (
		wg    sync.WaitGroup
		fails atomic.Int32
	)
	for _, c := range conns {
		wg.Go(func() {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, len(legacyAuthorized))
			if _, err := io.WriteString(c, "secret-passcode"); err != nil {
				fails.Add(1)
				return
			}
			if _, err := io.ReadFull(c, got); err != nil || string(got) != legacyAuthorized {
				fails.Add(1)
			}
		})
	}
	wg.Wait()
	if n := fails.Load(); n != 0 {
		t.Fatalf("%d of 60 simultaneous legacy links from one address were refused", n)
	}
	if got := ep.Stats().Failed; got != 0 {
		t.Errorf("Stats().Failed = %d, want 0", got)
	}
	// Each place is given back as its handshake ends, just after the
	// answer is written.
	deadline = time.Now().Add(5 * time.Second)
	for ep.gate.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes still pending after all 60 authenticated, want 0", ep.gate.Pending())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFailedHandshakesLoggedInAggregate: hundreds of wrong passcodes make
// no line per attempt; they are counted and summed up in one line.
func TestFailedHandshakesLoggedInAggregate(t *testing.T) {
	gateWatchdog(t, 2*time.Minute)
	rec := &logRecorder{}
	ep, addr := gateEndpoint(t, nil, 0, slog.New(rec))
	const attempts = 300
	for range attempts {
		if c, err := legacyDial(addr, "wrong-passcode!"); err == nil {
			c.Close()
			t.Fatal("a wrong passcode was authorized")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for ep.Stats().Failed < attempts && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := ep.Stats().Failed; got != attempts {
		t.Errorf("Stats().Failed = %d, want %d", got, attempts)
	}
	if got := rec.count(slog.LevelInfo, "agent handshakes failed"); got > 1 {
		t.Errorf("%d INFO lines during the flood, want at most one", got)
	}
	ep.Close()
	if got := rec.count(slog.LevelInfo, "agent handshakes failed"); got < 1 || got > 2 {
		t.Errorf("%d INFO lines in all, want one or two (aggregated)", got)
	}
}
