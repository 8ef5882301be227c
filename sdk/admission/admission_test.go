package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) records() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slog.Record(nil), r.recs...)
}

func attrs(rec slog.Record) map[string]string {
	m := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

type tempErr struct{}

func (tempErr) Error() string   { return "temporary" }
func (tempErr) Temporary() bool { return true }

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"EMFILE", acceptErr(syscall.EMFILE), true},
		{"ENFILE", acceptErr(syscall.ENFILE), true},
		{"ENOBUFS", acceptErr(syscall.ENOBUFS), true},
		{"ENOMEM", acceptErr(syscall.ENOMEM), true},
		{"ECONNABORTED", acceptErr(syscall.ECONNABORTED), true},
		{"wrapped EMFILE", fmt.Errorf("tcp: %w", acceptErr(syscall.EMFILE)), true},
		{"Temporary", tempErr{}, true},
		{"closed", net.ErrClosed, false},
		{"EBADF", acceptErr(syscall.EBADF), false},
		{"EINVAL", acceptErr(syscall.EINVAL), false},
		{"plain", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// flakyListener returns errs from Accept one by one, then connections.
type flakyListener struct {
	net.Listener
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func TestRetryBacksOffLogsOncePerEpisode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		r := Retry{Logger: slog.New(rec), What: "accepting agent connections"}
		emfile := acceptErr(syscall.EMFILE)
		ln := &flakyListener{errs: []error{emfile, emfile, emfile, emfile, emfile, emfile, emfile, emfile, emfile}}
		start := time.Now()
		accepted := 0
		for accepted < 3 {
			c, err := ln.Accept()
			if err != nil {
				if !r.Wait(t.Context(), err) {
					t.Fatalf("Wait gave up on a transient error: %v", err)
				}
				continue
			}
			c.Close()
			r.Reset()
			accepted++
		}
		// 5+10+20+...+640 ms, then the 1 s cap: 5+10+20+40+80+160+320+640+1000.
		if got, want := time.Since(start), 2275*time.Millisecond; got != want {
			t.Errorf("backed off %v in all, want %v", got, want)
		}
		recs := rec.records()
		if len(recs) != 2 {
			t.Fatalf("got %d log lines, want 2 (one WARN, one INFO): %v", len(recs), recs)
		}
		if recs[0].Level != slog.LevelWarn || attrs(recs[0])["err"] != emfile.Error() {
			t.Errorf("first line %v %q %v, want WARN with the cause", recs[0].Level, recs[0].Message, attrs(recs[0]))
		}
		if recs[1].Level != slog.LevelInfo || attrs(recs[1])["retries"] != "9" {
			t.Errorf("second line %v %q %v, want INFO with retries=9", recs[1].Level, recs[1].Message, attrs(recs[1]))
		}
		// A second episode logs again, from the first delay.
		start = time.Now()
		if !r.Wait(t.Context(), emfile) || time.Since(start) != DefaultMinDelay {
			t.Errorf("a new episode did not restart at %v", DefaultMinDelay)
		}
		if n := len(rec.records()); n != 3 {
			t.Errorf("%d lines after a second episode started, want 3", n)
		}
	})
}

func TestRetryStopsOnPermanentErrorAndContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Retry
		if r.Wait(t.Context(), acceptErr(syscall.EBADF)) {
			t.Error("Wait retried a permanent error")
		}
		if r.Wait(t.Context(), net.ErrClosed) {
			t.Error("Wait retried a closed listener")
		}
		ctx, cancel := context.WithCancel(t.Context())
		r = Retry{MinDelay: time.Hour}
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		if r.Wait(ctx, acceptErr(syscall.EMFILE)) {
			t.Error("Wait returned true after ctx ended")
		}
		if time.Since(start) != time.Second {
			t.Errorf("Wait returned after %v, want when ctx ended (1s)", time.Since(start))
		}
	})
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2, 3)
	r1, ok1 := l.Acquire("a")
	_, ok2 := l.Acquire("a")
	_, ok3 := l.Acquire("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("per-source cap 2: got %v %v %v", ok1, ok2, ok3)
	}
	rb, okb := l.Acquire("b")
	if _, okc := l.Acquire("c"); !okb || okc {
		t.Fatalf("total cap 3: b %v, c %v", okb, okc)
	}
	r1()
	r1() // idempotent
	if got := l.Held("a"); got != 1 {
		t.Errorf("a holds %d after one release (twice), want 1", got)
	}
	if _, ok := l.Acquire("c"); !ok {
		t.Error("a freed place was not given to c")
	}
	rb()
	if got := l.Held("b"); got != 0 {
		t.Errorf("b holds %d, want 0", got)
	}
	if got := l.Len(); got != 2 {
		t.Errorf("Len %d, want 2", got)
	}
	l.mu.Lock()
	if _, ok := l.held["b"]; ok {
		t.Error("a source holding nothing is still in the map")
	}
	l.mu.Unlock()

	unlimited := NewLimiter(0, 0)
	for i := range 1000 {
		if _, ok := unlimited.Acquire("x"); !ok {
			t.Fatalf("an unlimited limiter refused place %d", i)
		}
	}
}

func TestSource(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 4000}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 4000}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 1}, "::/64"},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "/tmp/s"},
		{nil, "unknown"},
	}
	for _, tt := range tests {
		if got := Source(tt.addr); got != tt.want {
			t.Errorf("Source(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestTallyOneLinePerSourcePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		ty := NewTally(TallyConfig{Logger: slog.New(rec), Message: "agent handshakes failed", Interval: 10 * time.Second})
		defer ty.Close()
		// 1,000 events from two sources over 20 s: at most two lines per
		// source, one per interval.
		for i := range 1000 {
			src := "192.0.2.1"
			if i%2 == 1 {
				src = "192.0.2.2"
			}
			ty.Add(src, fmt.Sprintf("wrong passcode %d", i))
			time.Sleep(19 * time.Millisecond)
		}
		if n := len(rec.records()); n != 2*1 {
			// 1000*19ms = 19 s: one flush at 10 s, the next at 20 s.
			t.Fatalf("%d lines after 19 s, want 2 (one per source)", n)
		}
		time.Sleep(2 * time.Second)
		recs := rec.records()
		if len(recs) != 4 {
			t.Fatalf("%d lines after 21 s, want 4", len(recs))
		}
		var sum int64
		for _, r := range recs {
			a := attrs(r)
			if r.Level != slog.LevelInfo || r.Message != "agent handshakes failed" || a["interval"] != "10s" {
				t.Errorf("line %v %q %v", r.Level, r.Message, a)
			}
			var n int64
			fmt.Sscan(a["count"], &n)
			sum += n
		}
		if sum != 1000 || ty.Total() != 1000 {
			t.Errorf("counts sum to %d, Total %d, want 1000", sum, ty.Total())
		}
		if got := attrs(recs[3])["last_reason"]; got != "wrong passcode 999" {
			t.Errorf("last reason %q, want the last event's", got)
		}
		// Idle: nothing more is logged.
		time.Sleep(time.Minute)
		if n := len(rec.records()); n != 4 {
			t.Errorf("%d lines after an idle minute, want 4", n)
		}
	})
}

func TestTallyBoundsSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		ty := NewTally(TallyConfig{Logger: slog.New(rec), Message: "refused", MaxSources: 3})
		for i := range 50 {
			ty.Add(fmt.Sprintf("198.51.100.%d", i), string(make([]byte, 10000)))
		}
		ty.mu.Lock()
		tracked := len(ty.window)
		for _, e := range ty.window {
			if len(e.reason) > maxReason+3 {
				t.Errorf("a reason of %d bytes is kept", len(e.reason))
			}
		}
		ty.mu.Unlock()
		if tracked != 3 {
			t.Errorf("%d sources tracked, want 3", tracked)
		}
		time.Sleep(DefaultInterval)
		synctest.Wait()
		recs := rec.records()
		if len(recs) != 4 {
			t.Fatalf("%d lines, want 3 sources and one for the others", len(recs))
		}
		a := attrs(recs[3])
		if a["source"] != OtherSources || a["count"] != "47" {
			t.Errorf("overflow line %v, want source=%q count=47", a, OtherSources)
		}
		ty.Close()
	})
}

func TestTallyCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		ty := NewTally(TallyConfig{Logger: slog.New(rec), Message: "refused"})
		ty.Add("192.0.2.1", "cap")
		ty.Add("192.0.2.1", "cap")
		ty.Close()
		ty.Close()
		ty.Add("192.0.2.1", "after close")
		time.Sleep(time.Minute)
		recs := rec.records()
		if len(recs) != 1 || attrs(recs[0])["count"] != "2" {
			t.Fatalf("got %d lines (%v), want one with count=2", len(recs), recs)
		}
		if ty.Total() != 3 {
			t.Errorf("Total %d, want 3", ty.Total())
		}
	})
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{os.ErrDeadlineExceeded, "timeout"},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout"},
		{fmt.Errorf("x: %w", errors.New("eof")), "x: eof"},
		{fmt.Errorf("read: %w", os.NewSyscallError("read", syscall.ECONNRESET)), "connection reset"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
