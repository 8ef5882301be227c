package main

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	sortDurations(d)
	tests := []struct {
		name string
		p    float64
		want time.Duration
	}{
		{"p50", 50, 50 * time.Microsecond},
		{"p99", 99, 99 * time.Microsecond},
		{"p99.9", 99.9, 100 * time.Microsecond},
		{"p100", 100, 100 * time.Microsecond},
		{"tiny", 0.001, 1 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(d, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name          string
		in            []float64
		med, min, max float64
		n             int
	}{
		{"odd", []float64{3, 1, 2}, 2, 1, 3, 3},
		{"even", []float64{4, 1, 2, 3}, 2.5, 1, 4, 4},
		{"nan ignored", []float64{math.NaN(), 5, 7}, 6, 5, 7, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(tt.in)
			if got.Median != tt.med || got.Min != tt.min || got.Max != tt.max || got.N != tt.n {
				t.Errorf("summarize(%v) = %+v, want med %v min %v max %v n %d", tt.in, got, tt.med, tt.min, tt.max, tt.n)
			}
		})
	}
	if got := summarize([]float64{math.NaN()}); !math.IsNaN(got.Median) || got.format(1) != "n/a" {
		t.Errorf("all-NaN summary = %+v %q, want NaN and n/a", got, got.format(1))
	}
	if got, want := summarize([]float64{1, 2, 3}).format(1), "2.0 (1.0–3.0)"; got != want {
		t.Errorf("format = %q, want %q", got, want)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tiofog-connector\nVmPeak:\t 9999 kB\nVmRSS:\t   12345 kB\nThreads:\t8\n"
	got, err := parseVmRSS(strings.NewReader(status))
	if err != nil || got != 12345 {
		t.Fatalf("parseVmRSS = %d, %v; want 12345, nil", got, err)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tx\n")); !errors.Is(err, errNoField) {
		t.Errorf("missing VmRSS: err = %v, want errNoField", err)
	}
	if _, err := parseVmRSS(strings.NewReader("VmRSS:\tlots kB\n")); err == nil {
		t.Error("malformed VmRSS: want an error")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	line := "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 8 0 123 456 789\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3800 * time.Millisecond; got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); !errors.Is(err, errNoField) {
		t.Errorf("short line: err = %v, want errNoField", err)
	}
}

func TestSelfProc(t *testing.T) {
	// Our own process must show a plausible RSS and CPU time.
	pid := []int{os.Getpid()}
	kb, err := rssKB(pid)
	if err != nil || kb <= 0 {
		t.Errorf("rssKB(self) = %d, %v; want > 0", kb, err)
	}
	if _, err := cpuTime(pid); err != nil {
		t.Errorf("cpuTime(self): %v", err)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/iofog/iofog-connector/sdk/pipe
cpu: AMD EPYC
BenchmarkJoin-2           	     681	    216591 ns/op	1210.32 MB/s	      31 B/op	       1 allocs/op
BenchmarkJoin-2           	     700	    200000 ns/op	1300.00 MB/s	      31 B/op	       1 allocs/op
BenchmarkAlloc-2   	 1000000	      1042 ns/op
--- FAIL: BenchmarkBroken
PASS
pkg: github.com/iofog/iofog-connector/core/ports
BenchmarkAllocate/parallel-2 	 5000	 250.5 ns/op	 0 B/op	 0 allocs/op
`
	got := parseGoBench(out)
	if len(got) != 4 {
		t.Fatalf("parsed %d lines, want 4: %+v", len(got), got)
	}
	if got[0].Pkg != "github.com/iofog/iofog-connector/sdk/pipe" || got[0].Name != "BenchmarkJoin-2" ||
		got[0].NsOp != 216591 || got[0].MBs != 1210.32 || got[0].BOp != 31 || got[0].AllocsOp != 1 {
		t.Errorf("line 0 = %+v", got[0])
	}
	if !math.IsNaN(got[2].MBs) || got[2].NsOp != 1042 {
		t.Errorf("line 2 (no -benchmem fields) = %+v", got[2])
	}
	if got[3].Pkg != "github.com/iofog/iofog-connector/core/ports" || got[3].NsOp != 250.5 {
		t.Errorf("line 3 = %+v", got[3])
	}
}

func TestFdCount(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fds0, pipes0, err := fdCount([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	fds1, pipes1, err := fdCount([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if fds0-fds1 != 1 || pipes0-pipes1 != 1 {
		t.Errorf("closing one pipe end: fds %d→%d, pipes %d→%d; want each to drop by 1", fds0, fds1, pipes0, pipes1)
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name       string
		got, limit float64
		atLeast    bool
		want       string
	}{
		{"at least met", 10, 7.5, true, "met"},
		{"at least missed", 5, 10, true, "**missed** by 50% (5 short)"},
		{"at most met", 12, 16, false, "met"},
		{"at most missed", 20, 16, false, "**missed** by 25% (4 over)"},
		{"not measured", math.NaN(), 16, false, "not measured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdict(tt.got, tt.limit, tt.atLeast); got != tt.want {
				t.Errorf("verdict(%v, %v, %v) = %q, want %q", tt.got, tt.limit, tt.atLeast, got, tt.want)
			}
		})
	}
}

func TestParsePluginsList(t *testing.T) {
	out := `NAME       KIND                VERSION                PATH
tcp        built-in (default)  sdk 0.1.0 (protocol 1)  -
yamux      built-in            sdk 0.1.0 (protocol 1)  -
websocket  plugin              sdk 0.1.0 (protocol 1)  /x/iofog-transport-websocket
?          plugin (refused)    bad checksum            /x/iofog-transport-bad
`
	got := strings.Join(parsePluginsList(out), ",")
	if want := "tcp,yamux,websocket"; got != want {
		t.Errorf("parsePluginsList = %s, want %s", got, want)
	}
	if got := parsePluginsList("error: something\n"); len(got) != 0 {
		t.Errorf("no header: got %v, want none", got)
	}
}

func TestWithDescendants(t *testing.T) {
	if got, err := parsePPid([]byte("42 (a) b) S 7 42 42")); err != nil || got != 7 {
		t.Errorf("parsePPid = %d, %v; want 7", got, err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	got := withDescendants([]int{os.Getpid()})
	found := false
	for _, p := range got {
		found = found || p == cmd.Process.Pid
	}
	if !found || got[0] != os.Getpid() {
		t.Errorf("withDescendants(self) = %v; want self first and child %d included", got, cmd.Process.Pid)
	}
}

func TestMemKBSelf(t *testing.T) {
	pid := []int{os.Getpid()}
	rss, err := rssKB(pid)
	if err != nil {
		t.Fatal(err)
	}
	pss, err := memKB(pid, "smaps_rollup", "Pss:")
	if err != nil {
		t.Fatal(err)
	}
	anon, err := memKB(pid, "status", "RssAnon:")
	if err != nil {
		t.Fatal(err)
	}
	if pss <= 0 || anon <= 0 || pss > rss || anon > rss {
		t.Errorf("rss %d kB, pss %d kB, anon %d kB: want 0 < pss, anon ≤ rss", rss, pss, anon)
	}
	if _, err := memKB(pid, "status", "NoSuchField:"); err == nil {
		t.Error("a missing field gave no error")
	}
}
