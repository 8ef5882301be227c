package examples_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestWalkthroughs runs the scripts of the expose-http and private-pipe
// walk-throughs against a freshly built connector (and the WebSocket
// plugin), as a reader would, from a directory outside the repository.
// Each script exits non-zero when its check fails.
func TestWalkthroughs(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the walk-throughs need %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "iofog-connector")
	pluginDir := filepath.Join(dir, "plugins")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	for _, b := range [][]string{
		{"-o", bin, "../cmd/iofog-connector"},
		{"-o", filepath.Join(pluginDir, "iofog-transport-websocket"), "./websocket-transport"},
	} {
		if out, err := exec.CommandContext(ctx, "go", append([]string{"build"}, b...)...).CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", b, err, out)
		}
	}
	for _, tc := range []struct{ name, script, transport string }{
		{"expose-http", "expose-http/run.sh", ""},
		{"expose-http/websocket", "expose-http/run.sh", "websocket"},
		{"private-pipe", "private-pipe/run.sh", ""},
		{"private-pipe/websocket", "private-pipe/run.sh", "websocket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
			defer scancel()
			script, err := filepath.Abs(tc.script)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(sctx, "bash", script)
			cmd.Dir = t.TempDir() // the scripts must not depend on the caller's directory
			cmd.Env = append(os.Environ(), "IOFOG_CONNECTOR_BIN="+bin)
			if tc.transport != "" {
				cmd.Env = append(cmd.Env, "TRANSPORT="+tc.transport, "PLUGIN_DIR="+pluginDir)
			}
			// On timeout, SIGTERM lets the script's EXIT trap stop what it
			// started (by PID); WaitDelay then bounds the wait.
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 15 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", tc.script, err, out)
			}
			t.Logf("%s", out)
		})
	}
}
