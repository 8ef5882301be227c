package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// profileBulk samples the anchor's relay processes with `perf record`
// during one 1-stream upload and returns the top symbols (self time), so a
// missed CPU or throughput target comes with the reason.
func profileBulk(ctx context.Context, a *anchor, dir string, dur time.Duration) (string, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return "", fmt.Errorf("connector-bench: perf: %w", err)
	}
	var pids []string
	for _, p := range a.pids() {
		pids = append(pids, strconv.Itoa(p))
	}
	if len(pids) == 0 {
		return "", errNoField
	}
	data := filepath.Join(dir, "perf-"+strings.ReplaceAll(a.name, " ", "-")+".data")
	secs := strconv.FormatFloat(dur.Seconds(), 'f', 1, 64)
	pctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	rec := exec.CommandContext(pctx, perf, "record", "-F", "999", "-p", strings.Join(pids, ","), "-o", data, "--", "sleep", secs)
	if err := rec.Start(); err != nil {
		return "", err
	}
	time.Sleep(100 * time.Millisecond)
	r, berr := bulk(ctx, a.svc, 1, dur-200*time.Millisecond, false)
	if werr := rec.Wait(); werr != nil {
		return "", fmt.Errorf("connector-bench: perf record: %w", werr)
	}
	if berr != nil {
		return "", berr
	}
	out, err := exec.CommandContext(pctx, perf, "report", "-i", data, "--stdio", "--no-children",
		"--sort", "comm,dso,sym", "--percent-limit", "1", "-g", "none").Output()
	if err != nil {
		return "", fmt.Errorf("connector-bench: perf report: %w", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, strings.TrimRight(l, " "))
		if len(lines) == 25 {
			break
		}
	}
	return fmt.Sprintf("1-stream upload, %.2f Gbit/s while sampled; perf record -F 999 on PIDs %s; self time by process, object, symbol (≥ 1%%):\n%s",
		r.bitsPerSec()/1e9, strings.Join(pids, ","), strings.Join(lines, "\n")), nil
}
