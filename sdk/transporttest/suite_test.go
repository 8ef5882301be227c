package transporttest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

func TestReference(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return reftransport.New(), transporttest.Options{Origins: true}
	})
}

func TestReferenceTLS(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return reftransport.New(), transporttest.Options{
			TLS:     true,
			Origins: true,
			Skip: map[string]string{
				// crypto/tls: once a Write times out the conn is broken
				// for good (a permanentError), so nettest's PastTimeout
				// round trip after a timed-out Write cannot pass.
				"NetConn": "*tls.Conn does not survive a timed-out Write (crypto/tls permanentError)",
			},
		}
	})
}

// TestFaulty runs one subtest against a deliberately broken reference
// transport; TestSuiteCatchesFaults runs it in a child process and expects
// it to fail. It passes trivially when run on its own.
func TestFaulty(t *testing.T) {
	fault := os.Getenv("TRANSPORTTEST_FAULT")
	if fault == "" {
		t.Skip("run by TestSuiteCatchesFaults")
	}
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return reftransport.NewFaulty(fault), transporttest.Options{Timeout: 25 * time.Second}
	})
}

func TestSuiteCatchesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, tc := range []struct{ fault, subtest, want string }{
		{"nopasscode", "BadPasscode", "want sdk.ErrBadPasscode"},
		{"nolimit", "LinkLimit", "want sdk.ErrLinkLimit"},
		{"noheartbeat", "HeartbeatAbsence", "connector's stream outlived an agent silent"},
		{"nothreshold", "AgentFrozen", "it was not told the threshold"},
		{"leak", "NoLeaks", "goroutines 10s after everything was closed"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFaulty$/^"+tc.subtest+"$", "-test.v")
			cmd.Env = append(os.Environ(), "TRANSPORTTEST_FAULT="+tc.fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a transport with fault %q:\n%s", tc.fault, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestFaulty/"+tc.subtest) || !strings.Contains(string(out), tc.want) {
				t.Fatalf("fault %q: want %s to fail with %q; got:\n%s", tc.fault, tc.subtest, tc.want, out)
			}
		})
	}
}
