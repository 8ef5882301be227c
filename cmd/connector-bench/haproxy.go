package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// haproxyThreads is haproxy's nbthread: one thread, so it is a single-core
// one-hop proxy like each of our hops.
const haproxyThreads = 1

// haproxyMaxPipes bounds haproxy's pool of splice pipes (default
// maxconn/4), so that 2 descriptors per connection plus the pipes fit the
// 20,000 open-files hard limit at 9,000 held connections. Only active
// transfers use a pipe.
const haproxyMaxPipes = 256

// haproxyConfig returns a TCP-mode configuration with splice in both
// directions that forwards each listen port to its backend.
func haproxyConfig(fronts map[int]string, maxconn int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n\tnbthread %d\n\tmaxconn %d\n\tmaxpipes %d\n\tlog stderr format raw local0 err\n\n", haproxyThreads, maxconn, haproxyMaxPipes)
	b.WriteString("defaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 1h\n\ttimeout server 1h\n")
	fmt.Fprintf(&b, "\tmaxconn %d\n\toption splice-auto\n\toption splice-request\n\toption splice-response\n\n", maxconn)
	i := 0
	for port, backend := range fronts {
		fmt.Fprintf(&b, "listen l%d\n\tbind 127.0.0.1:%d\n\tserver s%d %s\n\n", i, port, i, backend)
		i++
	}
	return b.String()
}

// haproxyAnchor is a running haproxy in front of the services.
type haproxyAnchor struct {
	proc    *child
	version string
}

// startHAProxy starts haproxy in the foreground (-db) so we own its PID,
// with one frontend per backend; it returns the frontend addresses in the
// order of backends.
func startHAProxy(ctx context.Context, cl *cleanup, log *slog.Logger, dir string, maxconn int, backends ...string) (*haproxyAnchor, []string, error) {
	path, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, nil, fmt.Errorf("connector-bench: haproxy: %w", err)
	}
	ver, _ := exec.Command(path, "-v").Output()
	fronts := map[int]string{}
	addrs := make([]string, len(backends))
	for i, be := range backends {
		p, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		fronts[p] = be
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(fronts, maxconn)), 0o600); err != nil {
		return nil, nil, err
	}
	c, err := startChild(cl, log, "haproxy", nil, path, "-f", cfg, "-db")
	if err != nil {
		return nil, nil, err
	}
	for _, a := range addrs {
		if err := waitTCP(ctx, a, 10*time.Second); err != nil {
			return nil, nil, fmt.Errorf("%w: %s", err, c.out.String())
		}
	}
	first, _, _ := strings.Cut(string(ver), "\n")
	return &haproxyAnchor{proc: c, version: strings.TrimSpace(first)}, addrs, nil
}
