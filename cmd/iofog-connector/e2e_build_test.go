package main

// The e2e harness's builds: the connector binary and the example
// WebSocket transport plugin are each built at most once per `go test`
// run, on first use, and shared by every e2e test and benchmark of the
// package. The connector is built with -race when the tests run with
// -race (e2eRace: e2e_race_test.go, e2e_norace_test.go), so a race in the
// daemon or the agent fails the tests; the plugin is a separate program
// and is built plainly. TestMain removes both at the end.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// e2eBuilt is one artefact built once per test run.
type e2eBuilt struct {
	once sync.Once
	dir  string // temp dir holding it, removed by TestMain
	path string
	err  error
}

// get builds the artefact on first use: `go build args... -o DIR/name pkg`.
func (b *e2eBuilt) get(t testing.TB, name, pkg string, args ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "iofog-connector-e2e-")
		if err != nil {
			b.err = err
			return
		}
		b.dir, b.path = dir, filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := append(append([]string{"build"}, args...), "-o", b.path, pkg)
		if out, err := exec.CommandContext(ctx, "go", cmd...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %v: %v\n%s", cmd, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// remove deletes what get built.
func (b *e2eBuilt) remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

var (
	e2eConnector e2eBuilt // ./cmd/iofog-connector
	e2ePlugin    e2eBuilt // ./examples/websocket-transport
)

// e2eBinary builds ./cmd/iofog-connector once per `go test` run (with
// -race under -race) and returns the binary's path.
func e2eBinary(t testing.TB) string {
	t.Helper()
	var args []string
	if e2eRace {
		args = append(args, "-race")
	}
	return e2eConnector.get(t, "iofog-connector", ".", args...)
}

// e2ePluginDir builds the example WebSocket transport plugin once per `go
// test` run and returns the plugin directory holding it (and nothing
// else), for plugins.dir and the agent's --plugin-dir. Tests must not
// write into it.
func e2ePluginDir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(e2ePlugin.get(t, filepath.Join("plugins", "iofog-transport-websocket"), "../../examples/websocket-transport"))
}

func TestMain(m *testing.M) {
	if raw := os.Getenv(hliveLegacyEnv); raw != "" {
		os.Exit(hliveLegacyProcess(raw)) // a legacy agent started by a test
	}
	code := m.Run()
	e2eConnector.remove()
	e2ePlugin.remove()
	os.Exit(code)
}
