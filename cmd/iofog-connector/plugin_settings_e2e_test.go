package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pse2eStatus GETs path on addr and returns the status code.
func pse2eStatus(t *testing.T, addr, path string) int {
	t.Helper()
	resp, err := netClient().Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPluginSettingsE2E: transports.websocket.path in the daemon's
// settings file reaches the real websocket plugin process: its agent port
// answers 404 on the default path and serves WebSockets on the one set.
// An agent given the same path through the environment
// (IOFOG_CONNECTOR_TRANSPORTS_WEBSOCKET_PATH) carries checksummed data
// through a public mapping; an agent left on the default path cannot
// connect.
func TestPluginSettingsE2E(t *testing.T) {
	e2eWatchdog(t, 4*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, pluginDir := pe2eBuild(t)
	const path = "/behind/proxy"
	d := e2eStartDaemon(t, e2eOptions{Settings: map[string]any{
		"plugins":    map[string]any{"dir": pluginDir},
		"transports": map[string]any{"websocket": map[string]any{"path": path}},
	}})
	m := d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"websocket"}`)
	if m.Transport != "websocket" {
		t.Fatalf("mapping/add answered %+v, want transport websocket", m)
	}
	e2eWaitPort(t, d.Addr(m.Port1), 10*time.Second)
	if got := pse2eStatus(t, d.Addr(m.Port1), "/iofog/v1/link"); got != http.StatusNotFound {
		t.Fatalf("GET /iofog/v1/link on the agent port = %d, want 404 (path moved by the settings file)", got)
	}
	if got := pse2eStatus(t, d.Addr(m.Port1), path); got == http.StatusNotFound {
		t.Fatalf("GET %s on the agent port = 404, want the WebSocket handshake's answer", path)
	}

	// An agent on the default path fails its handshake.
	echo := e2eEcho(t)
	args := e2eAgentArgs("public", d.Addr(m.Port1), m.Passcode1, "--local", echo, "--transport", "websocket",
		"--plugin-dir", pluginDir, "--plaintext")
	lost := e2eStart(t, d.Bin, args...)
	if _, err := lost.waitLine("websocket handshake", 30*time.Second); err != nil {
		t.Fatalf("an agent on the default path: %v", err)
	}
	lost.stop(t)

	// The same path through the environment: the agent serves.
	cmd := exec.Command(d.Bin, args...)
	cmd.Env = append(os.Environ(), "IOFOG_CONNECTOR_TRANSPORTS_WEBSOCKET_PATH="+path)
	agent := e2eStartCmd(t, cmd)
	if err := pe2eWait(ctx, "a checksummed round trip through the moved path", func() error {
		if !agent.alive() {
			return errFatal("the agent exited:\n" + agent.out.String())
		}
		return pe2eRoundTrip(d.Addr(m.Port2), 1<<20, false, nil)
	}); err != nil {
		t.Fatal(err)
	}
	agent.stop(t)
	d.Stop(t)
}

// pse2eSettingsFile writes a dev-mode settings file with plugins.dir and
// extra keys, and returns its path and a data dir.
func pse2eSettingsFile(t *testing.T, pluginDir string, extra map[string]any) (string, string) {
	t.Helper()
	dir := t.TempDir()
	lo, hi := e2ePortRange(t, 4)
	s := map[string]any{
		"ports": []string{fmt.Sprintf("%d-%d", lo, hi)}, "dev": true, "bind": "127.0.0.1",
		"api-address": "127.0.0.1:" + strconv.Itoa(e2eFreePort(t)),
		"plugins":     map[string]any{"dir": pluginDir},
	}
	for k, v := range extra {
		s[k] = v
	}
	b, _ := json.Marshal(s)
	p := filepath.Join(dir, "iofog-connector.conf")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, filepath.Join(dir, "data")
}

// TestPluginSettingsRefusedE2E: settings the websocket plugin refuses stop
// the daemon's start, and the agent's, with a message naming the plugin
// and the key: an unknown key in the file, a bad value from the
// environment.
func TestPluginSettingsRefusedE2E(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	_, pluginDir := pe2eBuild(t)
	conf, data := pse2eSettingsFile(t, pluginDir, map[string]any{
		"transports": map[string]any{"websocket": map[string]any{"pth": "/typo"}},
	})
	out, code := e2eRun(t, nil, "start", "--config", conf, "--data-dir", data)
	if code == 0 || !strings.Contains(out, "iofog-transport-websocket") ||
		!strings.Contains(out, "transports.websocket.pth: unknown key; websocket takes path, read-limit") {
		t.Fatalf("start with transports.websocket.pth: exit %d, output:\n%s", code, out)
	}

	conf, data = pse2eSettingsFile(t, pluginDir, nil)
	env := []string{"IOFOG_CONNECTOR_TRANSPORTS_WEBSOCKET_READ_LIMIT=10"}
	out, code = e2eRun(t, env, "start", "--config", conf, "--data-dir", data)
	if code == 0 || !strings.Contains(out, "iofog-transport-websocket") || !strings.Contains(out, "read-limit 10 is not between 1024") {
		t.Fatalf("start with IOFOG_CONNECTOR_TRANSPORTS_WEBSOCKET_READ_LIMIT=10: exit %d, output:\n%s", code, out)
	}

	// The agent reads the same settings.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eBinary(t), e2eAgentArgs("public", "127.0.0.1:1", "pw",
		"--local", "127.0.0.1:1", "--transport", "websocket", "--plugin-dir", pluginDir, "--plaintext")...)
	cmd.Env = append(os.Environ(), "IOFOG_CONNECTOR_TRANSPORTS_WEBSOCKET_PTH=/typo")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "transports.websocket.pth: unknown key") {
		t.Fatalf("agent with IOFOG_CONNECTOR_TRANSPORTS_WEBSOCKET_PTH: %v, output:\n%s", err, b)
	}
}
