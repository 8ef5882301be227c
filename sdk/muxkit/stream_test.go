package muxkit_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// TestStreamState: deadlines apply before the stream is touched and are
// passed on, Close runs its function and the OnClose hook once, and
// everything fails with net.ErrClosed after it.
func TestStreamState(t *testing.T) {
	var s muxkit.StreamState
	var passed []time.Time
	set := func(d time.Time) error { passed = append(passed, d); return nil }
	if err := s.CheckRead(); err != nil {
		t.Fatalf("CheckRead on a new stream: %v", err)
	}
	past := time.Now().Add(-time.Second)
	if err := s.SetReadDeadlineWith(past, set); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckRead(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("CheckRead past the read deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := s.CheckWrite(); err != nil {
		t.Errorf("CheckWrite with only a read deadline: %v", err)
	}
	s.SetWriteDeadlineWith(past, set)
	if err := s.CheckWrite(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("CheckWrite past the write deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	s.SetReadDeadlineWith(time.Time{}, set)
	if err := s.CheckRead(); err != nil {
		t.Errorf("CheckRead after the deadline was cleared: %v", err)
	}
	if len(passed) != 3 || !passed[0].Equal(past) || !passed[2].IsZero() {
		t.Errorf("deadlines passed on: %v", passed)
	}

	var closed, hooked int
	s.OnClose(func() { hooked++ })
	if err := s.CloseOnce(func() {
		closed++
		if !s.IsClosed() {
			t.Error("IsClosed is false while Close runs")
		}
	}); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := s.CloseOnce(func() { closed++ }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if closed != 1 || hooked != 1 {
		t.Errorf("Close ran its function %d times and the hook %d times, want once each", closed, hooked)
	}
	for name, err := range map[string]error{
		"CheckRead":   s.CheckRead(),
		"CheckWrite":  s.CheckWrite(),
		"SetDeadline": s.SetReadDeadlineWith(time.Now(), set),
	} {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
		}
	}
}

// TestWaitReadWith: the multiplexer's wait decides, except that a stream
// closed meanwhile says net.ErrClosed and the end of the stream is nil.
func TestWaitReadWith(t *testing.T) {
	errMapped := errors.New("mapped")
	mapErr := func(error) error { return errMapped }
	for _, tt := range []struct {
		name      string
		waitErr   error
		closeWait bool // Close while waiting
		want      error
	}{
		{"bytes there", nil, false, nil},
		{"end of stream", io.EOF, false, nil},
		{"failed", errors.New("reset"), false, errMapped},
		{"closed while waiting, then EOF", io.EOF, true, net.ErrClosed},
		{"closed while waiting, then nil", nil, true, net.ErrClosed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s muxkit.StreamState
			err := s.WaitReadWith(func() error {
				if tt.closeWait {
					s.CloseOnce(func() {})
				}
				return tt.waitErr
			}, mapErr)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("WaitReadWith = %v, want %v", err, tt.want)
			}
		})
	}
	var s muxkit.StreamState
	s.CloseOnce(func() {})
	if err := s.WaitReadWith(func() error { t.Error("wait ran on a closed stream"); return nil }, mapErr); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WaitReadWith after Close = %v, want net.ErrClosed", err)
	}
}
