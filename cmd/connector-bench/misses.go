package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The loads a Go profile is taken under (the phase part of its file name).
const (
	phaseBulk    = "bulk-1↑"
	phaseLatency = "latency"
	phaseRate    = "connrate"
	phaseHeld    = "held"
)

// missTopN is how many of a profile's heaviest entries the report quotes
// for a missed target.
const missTopN = 8

// writeMisses writes, for every missed target, what the Go profiles of
// its anchor under its load show: the heaviest entries (flat) of the
// daemon's and the agent's profile, read from the summaries the run wrote
// to the -pprof directory. It writes nothing when no target was missed.
func writeMisses(b *strings.Builder, cfg benchConfig, ts []target) {
	var missed []target
	for _, t := range ts {
		if strings.HasPrefix(t.verdict, "**missed**") {
			missed = append(missed, t)
		}
	}
	if len(missed) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Missed targets: what the profiles show\n\n")
	fmt.Fprintf(b, "For each missed target, the heaviest entries (self time for CPU, in-use space for heap) of the Go profiles of the daemon and the agent taken under the load that target measures, in this run (first repeat). docs/performance.md explains each miss and what would close it.\n\n")
	for _, t := range missed {
		fmt.Fprintf(b, "- **%s**: %s\n", t.name, t.measured)
		switch {
		case t.phase == "":
			fmt.Fprintf(b, "  - no Go profile applies (see docs/performance.md)\n")
			continue
		case cfg.PprofDir == "":
			fmt.Fprintf(b, "  - no profiles: run with -pprof DIR to see them here\n")
			continue
		}
		for _, hop := range []string{"daemon", "agent"} {
			kind := "cpu"
			if t.phase == phaseHeld {
				kind = "heap"
			}
			path := (&goProfiles{dir: cfg.PprofDir}).path(t.anchor, t.phase, hop, kind)
			path = strings.TrimSuffix(path, ".pprof") + ".txt"
			top, total, err := profileTop(path, missTopN)
			if err != nil {
				fmt.Fprintf(b, "  - %s: no profile (%v)\n", hop, err)
				continue
			}
			fmt.Fprintf(b, "  - %s `%s` (%s): %s\n", hop, filepath.Base(path), total, strings.Join(top, "; "))
		}
	}
}

// profileTop reads a `go tool pprof -top` summary and returns its first n
// entries as "flat% function" and the total it reports.
func profileTop(path string, n int) ([]string, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var (
		top   []string
		total string
		in    bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "Showing nodes accounting for "); ok {
			if i := strings.Index(rest, " total"); i >= 0 {
				if j := strings.LastIndex(rest[:i], " of "); j >= 0 {
					total = rest[j+4:i] + " total"
				}
			}
			continue
		}
		if strings.HasPrefix(line, "flat ") {
			in = true
			continue
		}
		if !in || len(top) >= n {
			continue
		}
		// flat flat% sum% cum cum% name...
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		if f[0] == "0" || strings.HasPrefix(f[0], "0ms") || f[0] == "0B" || f[0] == "0kB" {
			break // the rest have no self time or space
		}
		top = append(top, f[1]+" "+shortFunc(strings.Join(f[5:], " ")))
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", path, err)
	}
	if len(top) == 0 {
		return nil, "", fmt.Errorf("%s lists no entries", filepath.Base(path))
	}
	return top, total, nil
}

// shortFunc trims the module path off our own functions, keeping the
// package: github.com/iofog/iofog-connector/sdk/pipe.Start -> sdk/pipe.Start.
func shortFunc(name string) string {
	return strings.TrimPrefix(name, "github.com/iofog/iofog-connector/")
}
