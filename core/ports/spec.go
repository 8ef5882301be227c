package ports

import (
	"fmt"
	"strconv"
	"strings"
)

// Range is an inclusive range of ports.
type Range struct {
	// First is the lowest port of the range.
	First int
	// Last is the highest port; equal to First for a single port.
	Last int
}

// ParseSpec parses the legacy form of a port set: "N" or "A-B" (inclusive,
// A <= B, both in 1..65535). The error wraps [ErrBadSpec].
func ParseSpec(s string) (Range, error) {
	t := strings.TrimSpace(s)
	a, b, isRange := strings.Cut(t, "-")
	first, err1 := parsePort(a)
	last := first
	var err2 error
	if isRange {
		last, err2 = parsePort(b)
	}
	if err1 != nil || err2 != nil || first > last {
		return Range{}, fmt.Errorf("%q %w", s, ErrBadSpec)
	}
	return Range{First: first, Last: last}, nil
}

func parsePort(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// Pool returns the sorted, deduplicated ports of include minus exclude.
func Pool(include, exclude []Range) []int {
	var in, out [65536]bool
	for _, r := range include {
		for p := r.First; p <= r.Last; p++ {
			in[p] = true
		}
	}
	for _, r := range exclude {
		for p := r.First; p <= r.Last; p++ {
			out[p] = true
		}
	}
	var pool []int
	for p := 1; p <= 65535; p++ {
		if in[p] && !out[p] {
			pool = append(pool, p)
		}
	}
	return pool
}
