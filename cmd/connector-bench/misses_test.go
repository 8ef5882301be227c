package main

import (
	"os"
	"strings"
	"testing"
)

// A missed target quotes the heaviest entries of its anchor's profiles
// under its load; a met target and a target without profiles say so.
func TestWriteMisses(t *testing.T) {
	dir := t.TempDir()
	g := &goProfiles{dir: dir}
	write := func(anchor, phase, hop, kind, body string) {
		t.Helper()
		p := strings.TrimSuffix(g.path(anchor, phase, hop, kind), ".pprof") + ".txt"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("yamux tls", phaseLatency, "daemon", "cpu", `File: iofog-connector
Type: cpu
Showing nodes accounting for 660ms, 100% of 660ms total
      flat  flat%   sum%        cum   cum%
     360ms 54.55% 54.55%      360ms 54.55%  internal/runtime/syscall/linux.Syscall6
     130ms 19.70% 74.24%      130ms 19.70%  runtime.futex
      10ms  1.52% 86.36%       10ms  1.52%  github.com/iofog/iofog-connector/sdk/pipe.(*meter).moved
         0     0%   100%       30ms  4.55%  bufio.(*Reader).Read
`)
	write("yamux dev", phaseHeld, "agent", "heap", `Type: inuse_space
Showing nodes accounting for 38987.82kB, 100% of 38987.82kB total
      flat  flat%   sum%        cum   cum%
    9225kB 23.66% 23.66%     9225kB 23.66%  bytes.growSlice
`)
	ts := []target{
		{"yamux tls: added p50", "+140 µs", "**missed** by 24%", "yamux tls", phaseLatency},
		{"yamux dev: KB per held", "19.9 KB", "**missed** by 148%", "yamux dev", phaseHeld},
		{"tcp dev: p50", "+78 µs", "met", "tcp dev", phaseLatency},
		{"tcp dev: RSS at rest", "140 MB", "**missed** by 119%", "", ""},
	}
	var b strings.Builder
	writeMisses(&b, benchConfig{PprofDir: dir}, ts)
	out := b.String()
	for _, want := range []string{
		"## Missed targets",
		"daemon `yamux-tls_latency_daemon.cpu.txt` (660ms total): 54.55% internal/runtime/syscall/linux.Syscall6; 19.70% runtime.futex; 1.52% sdk/pipe.(*meter).moved\n",
		"agent `yamux-dev_held_agent.heap.txt` (38987.82kB total): 23.66% bytes.growSlice\n",
		"- **tcp dev: RSS at rest**: 140 MB\n  - no Go profile applies",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bufio.(*Reader).Read") {
		t.Errorf("an entry without self time was quoted:\n%s", out)
	}
	if strings.Contains(out, "tcp dev: p50") {
		t.Errorf("a met target was listed:\n%s", out)
	}
	// The yamux tls agent profile is missing: said, not skipped silently.
	if !strings.Contains(out, "agent: no profile") {
		t.Errorf("a missing profile is not reported:\n%s", out)
	}
	b.Reset()
	writeMisses(&b, benchConfig{PprofDir: dir}, ts[2:3])
	if b.Len() != 0 {
		t.Errorf("no miss, yet a section: %q", b.String())
	}
}
