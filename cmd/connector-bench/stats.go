package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// errNoField is returned by the /proc parsers when the field they look for
// is missing.
var errNoField = errors.New("connector-bench: field not found")

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method. sorted must be in ascending order; an empty slice
// yields 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// sortDurations sorts d in place and returns it.
func sortDurations(d []time.Duration) []time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d
}

// summary is the median and range of the repeats of one measurement.
type summary struct {
	Median, Min, Max float64
	N                int
}

// summarize returns the median, min and max of xs, ignoring NaN values
// (failed repeats). With no valid value every field is NaN.
func summarize(xs []float64) summary {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	sort.Float64s(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return summary{Median: med, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// format renders s as "median (min–max)" with the given precision.
func (s summary) format(prec int) string {
	if math.IsNaN(s.Median) {
		return "n/a"
	}
	if s.N == 1 {
		return strconv.FormatFloat(s.Median, 'f', prec, 64)
	}
	return fmt.Sprintf("%s (%s–%s)",
		strconv.FormatFloat(s.Median, 'f', prec, 64),
		strconv.FormatFloat(s.Min, 'f', prec, 64),
		strconv.FormatFloat(s.Max, 'f', prec, 64))
}

// parseVmRSS returns the VmRSS line of a /proc/PID/status file, in KiB.
func parseVmRSS(r io.Reader) (int64, error) { return parseKBField(r, "VmRSS:") }

// parseKBField returns the kB value of the first line starting with key in
// a /proc file such as status or smaps_rollup.
func parseKBField(r io.Reader, key string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			return 0, fmt.Errorf("connector-bench: malformed %s line %q", key, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("connector-bench: %s %w", key, err)
		}
		return kb, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errNoField
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// parseStatCPU returns utime+stime of a /proc/PID/stat line as a duration.
// The command name (field 2) may contain spaces and parentheses, so fields
// are counted after the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("connector-bench: stat: %w", errNoField)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("connector-bench: stat: %w", errNoField)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("connector-bench: stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// rssKB returns the summed VmRSS of pids in KiB.
func rssKB(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		kb, err := parseVmRSS(f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		sum += kb
	}
	return sum, nil
}

// memKB sums one kB field of a /proc file over pids: "smaps_rollup" and
// "Pss:" give the proportional set size, which counts the pages processes
// share (the same binary's text) once in all, unlike VmRSS; "status" and
// "RssAnon:" the anonymous memory (heap, stacks).
func memKB(pids []int, file, key string) (int64, error) {
	var sum int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
		if err != nil {
			return 0, err
		}
		kb, err := parseKBField(f, key)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		sum += kb
	}
	return sum, nil
}

// cpuTime returns the summed user+system CPU time of pids.
func cpuTime(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		d, err := parseStatCPU(b)
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		sum += d
	}
	return sum, nil
}

// fdCount returns the number of open descriptors of pids and how many of
// them are pipes (splice pipes pinned by idle connections show up here).
func fdCount(pids []int) (fds, pipes int, err error) {
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return 0, 0, err
		}
		for _, e := range ents {
			fds++
			if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
				pipes++
			}
		}
	}
	return fds, pipes, nil
}

// benchLine is one parsed line of `go test -bench` output.
type benchLine struct {
	Pkg, Name string
	NsOp      float64
	MBs       float64 // NaN when not reported
	BOp       float64 // NaN when not reported
	AllocsOp  float64 // NaN when not reported
}

// parseGoBench parses `go test -bench -benchmem` output.
func parseGoBench(out string) []benchLine {
	var res []benchLine
	pkg := ""
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		bl := benchLine{Pkg: pkg, Name: f[0], NsOp: math.NaN(), MBs: math.NaN(), BOp: math.NaN(), AllocsOp: math.NaN()}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				bl.NsOp = v
			case "MB/s":
				bl.MBs = v
			case "B/op":
				bl.BOp = v
			case "allocs/op":
				bl.AllocsOp = v
			}
		}
		if !math.IsNaN(bl.NsOp) {
			res = append(res, bl)
		}
	}
	return res
}

// parsePPid returns the parent PID in a /proc/PID/stat line.
func parsePPid(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errNoField
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, errNoField
	}
	return strconv.Atoi(f[1])
}

// withDescendants returns pids and every live descendant of them (the
// transport plugin processes a daemon or agent starts), so their CPU and
// memory count as the relay's.
func withDescendants(pids []int) []int {
	if len(pids) == 0 {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return pids
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if pp, err := parsePPid(b); err == nil {
			children[pp] = append(children[pp], pid)
		}
	}
	out := append([]int(nil), pids...)
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
