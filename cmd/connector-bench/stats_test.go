package main

import (
	"errors"
	"math"
	"os"
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
