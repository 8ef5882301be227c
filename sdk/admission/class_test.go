package admission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
)

// TestClass sorts every reason the transports give into its class; any
// other text (an error's) is a protocol failure.
func TestClass(t *testing.T) {
	for reason, want := range map[string]string{
		ReasonBadPasscode:                sdk.FailureBadPasscode,
		ReasonLinkLimit:                  sdk.FailureLimit,
		ReasonPendingCap:                 sdk.FailureLimit,
		ReasonRefused:                    sdk.FailureLimit,
		ReasonTimeout:                    sdk.FailureTimeout,
		Reason(context.DeadlineExceeded): sdk.FailureTimeout,
		Reason(io.EOF):                   sdk.FailureClosed,
		Reason(fmt.Errorf("x: %w", io.ErrUnexpectedEOF)):       sdk.FailureClosed,
		Reason(syscall.ECONNRESET):                             sdk.FailureClosed,
		ReasonGone:                                             sdk.FailureClosed,
		ReasonIncompatible:                                     sdk.FailureProtocol,
		Reason(errors.New("tcp: protocol error: bad magic")):   sdk.FailureProtocol,
		"tls: first record does not look like a TLS handshake": sdk.FailureProtocol,
	} {
		if got := Class(reason); got != want {
			t.Errorf("Class(%q) = %q, want %q", reason, got, want)
		}
	}
}

// TestGateFailedByReason: the split adds up to Failed, is nil while
// nothing failed, and counts refusals at the pending cap as limit.
func TestGateFailedByReason(t *testing.T) {
	g := NewGate(nil, 1)
	defer g.Close()
	if m := g.FailedByReason(); m != nil {
		t.Fatalf("FailedByReason with no failure = %v, want nil", m)
	}
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	g.Fail(a, ReasonBadPasscode)
	g.Fail(a, ReasonBadPasscode)
	g.Fail(a, Reason(context.DeadlineExceeded))
	g.Fail(a, "garbage")
	for {
		if _, ok := g.Enter(a); !ok {
			break // the pending cap refused one: a limit failure
		}
	}
	got := g.FailedByReason()
	want := map[string]int64{sdk.FailureBadPasscode: 2, sdk.FailureTimeout: 1, sdk.FailureProtocol: 1, sdk.FailureLimit: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("FailedByReason = %v, want %v", got, want)
	}
	var sum int64
	for _, n := range got {
		sum += n
	}
	if sum != g.Failed() {
		t.Fatalf("the split adds up to %d, Failed is %d", sum, g.Failed())
	}
}
