package streamkit

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

func tcpKit(fault string) *Transport {
	t := New(Config{Name: "tcpkit", Listen: ListenTCP, Dial: DialTCP})
	t.fault = fault
	return t
}

// TestFaulty runs one subtest against a deliberately broken kit
// transport; TestSuiteCatchesFaults runs it in a child process and
// expects it to fail. It passes trivially when run on its own.
func TestFaulty(t *testing.T) {
	fault := os.Getenv("TRANSPORTTEST_FAULT")
	if fault == "" {
		t.Skip("run by TestSuiteCatchesFaults")
	}
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return tcpKit(fault), transporttest.Options{Timeout: 25 * time.Second}
	})
}

// TestSuiteCatchesFaults: the conformance suite (sdk/transporttest)
// fails a kit transport that breaks one rule: it admits any passcode,
// ignores the link limit, never drops a silent agent, does not tell
// agents the threshold, or leaks its listener.
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
