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
// directions that forwards each listen port to its backend. With crt (a
// PEM file holding the certificate and its key), every listen port
// terminates TLS 1.3 with that certificate and talks plain TCP to its
// backend: the public side of our TLS path, one hop.
func haproxyConfig(fronts map[int]string, maxconn int, crt string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n\tnbthread %d\n\tmaxconn %d\n\tmaxpipes %d\n\tlog stderr format raw local0 err\n", haproxyThreads, maxconn, haproxyMaxPipes)
	if crt != "" {
		b.WriteString("\tssl-default-bind-options ssl-min-ver TLSv1.3\n")
	}
	b.WriteString("\n")
	b.WriteString("defaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 1h\n\ttimeout server 1h\n")
	fmt.Fprintf(&b, "\tmaxconn %d\n\toption splice-auto\n\toption splice-request\n\toption splice-response\n\n", maxconn)
	i := 0
	for port, backend := range fronts {
		ssl := ""
		if crt != "" {
			ssl = " ssl crt " + crt
		}
		fmt.Fprintf(&b, "listen l%d\n\tbind 127.0.0.1:%d%s\n\tserver s%d %s\n\n", i, port, ssl, i, backend)
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
// with one frontend per backend (terminating TLS with crt when it is not
// ""); it returns the frontend addresses in the order of backends.
func startHAProxy(ctx context.Context, cl *cleanup, log *slog.Logger, dir string, maxconn int, crt string, backends ...string) (*haproxyAnchor, []string, error) {
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
	if err := os.WriteFile(cfg, []byte(haproxyConfig(fronts, maxconn, crt)), 0o600); err != nil {
		return nil, nil, err
	}
	name := "haproxy"
	if crt != "" {
		name = "haproxy-tls"
	}
	c, err := startChild(cl, log, name, nil, path, "-f", cfg, "-db")
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

// writeHAProxyCert writes the certificate and key the connector reads from
// dir (server-cert.pem, server-key.pem) as one PEM file, the form
// haproxy's crt takes, and returns its path.
func writeHAProxyCert(dir string) (string, error) {
	var pem []byte
	for _, f := range []string{"server-cert.pem", "server-key.pem"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("connector-bench: haproxy tls: %w", err)
		}
		pem = append(pem, b...)
	}
	path := filepath.Join(dir, "haproxy.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		return "", fmt.Errorf("connector-bench: haproxy tls: %w", err)
	}
	return path, nil
}
