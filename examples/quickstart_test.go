package examples_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuickStart runs the README's Quick start shell block as written,
// twice in a row in one fresh HOME, from the repository root, as a newcomer
// would paste it, after a first run that left its mapping behind (so both
// start on a data dir holding a mapping on 7000/7001).
// It runs in a private network namespace when the machine allows one, so
// the block's fixed ports (8000, 8080, 7000-7999) are free.
func TestQuickStart(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "python3", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the Quick start needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/etc/iofog-connector/iofog-connector.conf"); err == nil {
		t.Skip("a settings file in /etc/iofog-connector replaces the dev defaults the Quick start assumes")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := quickStartBlock(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	// Background jobs the block starts are stopped by PID if it fails
	// half-way or the watchdog ends it (SIGTERM runs the EXIT trap).
	script := "set -e\ntrap 'exit 1' TERM\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + block
	argv := []string{"bash", "-c", script}
	if netnsWorks() {
		argv = []string{"unshare", "-rn", "bash", "-c", `ip link set lo up && exec bash -c "$0"`, script}
	} else if busy := busyPorts(8000, 8080, 7000, 7001, 7002, 7003); busy != nil {
		t.Skipf("no private network namespace (unshare -rn) and port %d is taken on this host", *busy)
	}

	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home)
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} { // keep the build caches out of the fresh HOME
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	// Run 0 is a newcomer who stopped before removing the mapping: its
	// mapping is restored on 7000/7001 in runs 1 and 2, which must use the
	// ports their own add answered.
	var kept []string
	for line := range strings.Lines(script) {
		if !strings.Contains(line, "/api/v2/mapping/remove") {
			kept = append(kept, line)
		}
	}
	interrupted := strings.Join(kept, "")
	if interrupted == script {
		t.Fatal("the Quick start no longer removes its mapping")
	}
	for run := range 3 {
		argv := argv
		if run == 0 {
			argv = append(argv[:len(argv)-1:len(argv)-1], interrupted)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = root, env
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 15 * time.Second
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		// The public port served the web server's listing of the root.
		if !strings.Contains(string(out), "Directory listing for /") || !strings.Contains(string(out), "README.md") {
			t.Fatalf("run %d: the page through the connector is not the web server's\n%s", run, out)
		}
		if !strings.Contains(string(out), "iofog-connector stopped") {
			t.Fatalf("run %d: the daemon was not stopped\n%s", run, out)
		}
		if run > 0 && !strings.Contains(string(out), `"port1":7002`) {
			t.Fatalf("run %d: the new mapping should get 7002/7003 beside the restored one\n%s", run, out)
		}
		t.Logf("run %d:\n%s", run, out)
	}
}

// quickStartBlock returns the first ```sh block under the README's
// "## Quick start" heading.
func quickStartBlock(readme string) (string, error) {
	i := strings.Index(readme, "\n## Quick start")
	if i < 0 {
		return "", errors.New("README.md has no Quick start section")
	}
	rest := readme[i:]
	j := strings.Index(rest, "\n```sh\n")
	if k := strings.Index(rest[1:], "\n## "); j < 0 || (k >= 0 && j > k) {
		return "", errors.New("the Quick start section has no sh block")
	}
	rest = rest[j+len("\n```sh\n"):]
	k := strings.Index(rest, "\n```")
	if k < 0 {
		return "", errors.New("the Quick start sh block is not closed")
	}
	return rest[:k+1], nil
}

// netnsWorks reports whether an unprivileged private network namespace
// with a loopback can be made here.
func netnsWorks() bool {
	if _, err := exec.LookPath("unshare"); err != nil {
		return false
	}
	return exec.Command("unshare", "-rn", "ip", "link", "set", "lo", "up").Run() == nil
}

// busyPorts returns the first of ports that cannot be bound on loopback.
func busyPorts(ports ...int) *int {
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return &p
		}
		ln.Close()
	}
	return nil
}
