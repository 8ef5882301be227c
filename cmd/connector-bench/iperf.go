package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// iperfReport is the part of `iperf3 -J` output we read.
type iperfReport struct {
	End struct {
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			Seconds       float64 `json:"seconds"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// parseIperf returns the received throughput in bit/s from iperf3 JSON.
func parseIperf(b []byte) (float64, error) {
	var r iperfReport
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("connector-bench: iperf3 json: %w", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("connector-bench: iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("connector-bench: iperf3: %w", errNoField)
	}
	return r.End.SumReceived.BitsPerSecond, nil
}

// startIperfServer starts `iperf3 -s` on a free loopback port.
func startIperfServer(ctx context.Context, cl *cleanup, log *slog.Logger) (*child, string, error) {
	path, err := exec.LookPath("iperf3")
	if err != nil {
		return nil, "", fmt.Errorf("connector-bench: iperf3: %w", err)
	}
	p, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(p)
	c, err := startChild(cl, log, "iperf3-server", nil, path, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(p))
	if err != nil {
		return nil, "", err
	}
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		return nil, "", err
	}
	return c, addr, nil
}

// runIperf runs one iperf3 client against addr and returns bit/s.
func runIperf(ctx context.Context, addr string, streams int, dur time.Duration, reverse bool) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	secs := int(dur.Round(time.Second).Seconds())
	if secs < 1 {
		secs = 1
	}
	args := []string{"-c", host, "-p", port, "-t", strconv.Itoa(secs), "-P", strconv.Itoa(streams), "-J", "--connect-timeout", "5000"}
	if reverse {
		args = append(args, "-R")
	}
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "iperf3", args...)
	out, err := cmd.Output()
	bps, perr := parseIperf(out)
	if perr != nil {
		if err != nil {
			return 0, fmt.Errorf("connector-bench: iperf3 %v: %w (%v)", args, err, perr)
		}
		return 0, perr
	}
	return bps, nil
}
