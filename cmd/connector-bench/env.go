package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// envInfo describes the machine and software a report was made on.
type envInfo struct {
	NProc   int
	CPU     string
	Kernel  string
	MemKB   int64
	Commit  string
	Dirty   bool
	GoVer   string
	HAProxy string
	Iperf   string
	Nofile  uint64
}

// collectEnv gathers envInfo; missing pieces stay empty.
func collectEnv(ctx context.Context, cfg benchConfig, nofile uint64) envInfo {
	e := envInfo{NProc: runtime.NumCPU(), GoVer: runtime.Version(), Nofile: nofile}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		// MemTotal is formatted like VmRSS.
		b := make([]byte, 256)
		n, _ := f.Read(b)
		f.Close()
		if v, err := parseVmRSS(strings.NewReader(strings.Replace(string(b[:n]), "MemTotal:", "VmRSS:", 1))); err == nil {
			e.MemKB = v
		}
	}
	out := func(dir string, name string, args ...string) string {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, name, args...)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	e.Commit = out(cfg.RepoDir, "git", "rev-parse", "--short=12", "HEAD")
	e.Dirty = out(cfg.RepoDir, "git", "status", "--porcelain", "--untracked-files=no") != ""
	if v := out("", "iperf3", "--version"); v != "" {
		e.Iperf, _, _ = strings.Cut(v, "\n")
	}
	return e
}
