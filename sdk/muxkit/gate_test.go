package muxkit_test

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

func errnoAccept(e syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", e)}
}

// TestServeSurvivesTransientErrors: the shared accept loop goes on through
// EMFILE and friends and hands every later connection to admit.
func TestServeSurvivesTransientErrors(t *testing.T) {
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{})
	defer ep.Close()
	errs := []error{errnoAccept(syscall.EMFILE), errnoAccept(syscall.ENFILE), errnoAccept(syscall.ENOBUFS), errnoAccept(syscall.ECONNABORTED)}
	var calls, admitted atomic.Int32
	accept := func(ctx context.Context) (int, error) {
		n := int(calls.Add(1)) - 1
		if n < len(errs) {
			return 0, errs[n]
		}
		if n < len(errs)+3 {
			return n, nil
		}
		<-ctx.Done()
		return 0, ctx.Err()
	}
	ep.Go(func() { muxkit.Serve(ep, accept, func(int) { admitted.Add(1) }) })
	deadline := time.Now().Add(10 * time.Second)
	for admitted.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("admitted %d connections after transient errors, want 3", admitted.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-ep.Done():
		t.Fatalf("endpoint stopped on transient errors: %v", ep.Err())
	default:
	}
	ep.Close()
	if err := ep.Err(); err != nil {
		t.Errorf("Err() = %v after Close, want nil", err)
	}
}

// TestServeReportsPermanentError: an error that retrying cannot cure stops
// the loop and shows in Done and Err.
func TestServeReportsPermanentError(t *testing.T) {
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{Name: "test"})
	defer ep.Close()
	ep.Go(func() {
		muxkit.Serve(ep, func(context.Context) (int, error) { return 0, errnoAccept(syscall.EINVAL) }, func(int) {})
	})
	select {
	case <-ep.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after a permanent accept error")
	}
	if err := ep.Err(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Err() = %v, want it to wrap EINVAL", err)
	}
	var _ sdk.Stopper = ep
}

// TestEnterCapsPendingPerSource: Enter and Failed are the endpoint's
// admission.Gate (whose cap is tested in package admission): a source
// gets at most its cap of pending handshakes, refusals and failures are
// counted in the stats, and failures while the endpoint closes are not.
func TestEnterCapsPendingPerSource(t *testing.T) {
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{MaxLinks: 60})
	defer ep.Close()
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	limit := admission.PendingPerSource(60)
	var leaves []func()
	for i := range limit {
		leave, ok := ep.Enter(a)
		if !ok {
			t.Fatalf("pending handshake %d of %d refused", i+1, limit)
		}
		leaves = append(leaves, leave)
	}
	if _, ok := ep.Enter(a); ok {
		t.Fatal("a handshake over the per-source cap was let in")
	}
	leaves[0]()
	if _, ok := ep.Enter(a); !ok {
		t.Fatal("a freed place was not given back")
	}
	ep.Failed(a, "wrong passcode")
	if got := ep.Stats().Failed; got != 2 {
		t.Errorf("Stats().Failed = %d, want 2 (one refusal, one failure)", got)
	}
	ep.Close()
	ep.Failed(a, "closed during the handshake")
	if got := ep.Stats().Failed; got != 2 {
		t.Errorf("Stats().Failed = %d after a failure while closed, want still 2", got)
	}
}
