package main

// End-to-end tests of the operator CLI (issue 11, "A CLI for humans") with
// the real binary: mapping add|ls|show|rm and status --json over the
// control socket, shell completion, and SIGHUP reloads. Helpers are
// prefixed cli.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/api/control"
	"github.com/iofog/iofog-connector/api/status"
)

// cliRun runs the binary with args against d's settings and data dir.
func cliRun(t *testing.T, d *e2eDaemon, args ...string) (string, int) {
	t.Helper()
	return e2eRun(t, nil, append(args, "--config", d.ConfigPath, "--data-dir", d.DataDir)...)
}

// cliMust runs args and fails the test unless they exit 0.
func cliMust(t *testing.T, d *e2eDaemon, args ...string) string {
	t.Helper()
	out, code := cliRun(t, d, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, out)
	}
	return out
}

// cliField returns the value of the "  key:  value" line of out.
func cliField(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == key {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no %q line in:\n%s", key, out)
	return ""
}

// cliEcho writes n random bytes on c and requires the same n bytes back.
func cliEcho(c net.Conn, n int) error {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	data := make([]byte, n)
	rand.Read(data)
	werr := make(chan error, 1)
	go func() { _, err := c.Write(data); werr <- err }()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("the echo of %d bytes differs", n)
	}
	return nil
}

// cliDialEcho dials the public port until a client's bytes come back
// through an agent, and returns that connection, still open.
func cliDialEcho(t *testing.T, addr string, n int) net.Conn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			if err = cliEcho(c, n); err == nil {
				return c
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echo through %s within 30s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cliAgentFromHint starts the agent command line `mapping add` printed,
// with SERVICE_PORT replaced by the port of local.
func cliAgentFromHint(t *testing.T, bin, out, local string) *e2eProc {
	t.Helper()
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " iofog-connector agent ") {
			line = strings.TrimSpace(l)
			break
		}
	}
	words := strings.Fields(line)
	if len(words) < 4 || !strings.HasPrefix(words[0], passcodeEnv+"=") || words[1] != "iofog-connector" {
		t.Fatalf("no agent command line in:\n%s", out)
	}
	_, port, _ := net.SplitHostPort(local)
	args := strings.Fields(strings.ReplaceAll(strings.Join(words[2:], " "), "SERVICE_PORT", port))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), words[0])
	return e2eStartCmd(t, cmd)
}

// TestCLIMappingE2E: a mapping added with the CLI is listed (table and
// JSON), carries traffic through an agent started from the printed
// command line, shows its passcode, is stored like an API mapping (it
// survives a restart), and is removed; unknown ids and wrong flags fail
// with a clear message and a non-zero exit.
func TestCLIMappingE2E(t *testing.T) {
	e2eWatchdog(t, 4*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	echo := e2eEcho(t)

	out := cliMust(t, d, "mapping", "add", "--public", "--max-connections", "4")
	id, pass := cliField(t, out, "id"), cliField(t, out, "passcode1")
	port1, _ := strconv.Atoi(cliField(t, out, "port1"))
	port2, _ := strconv.Atoi(cliField(t, out, "port2"))
	if port1 < d.PortLo || port2 > d.PortHi || port1 == port2 || len(pass) < 16 {
		t.Fatalf("add printed ports %d,%d passcode %q (pool %d-%d):\n%s", port1, port2, pass, d.PortLo, d.PortHi, out)
	}
	for _, want := range []string{"--connector 127.0.0.1:" + strconv.Itoa(port1), "--plaintext", passcodeEnv + "=" + pass, "--pool 4",
		"public clients then connect to 127.0.0.1:" + strconv.Itoa(port2)} {
		if !strings.Contains(out, want) {
			t.Fatalf("add output lacks %q:\n%s", want, out)
		}
	}
	// The REST API sees the same mapping: the CLI went through the same manager.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if code, body, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {id}}); err != nil || code != 200 {
		t.Fatalf("API status of the CLI's mapping: %d %v %v", code, body, err)
	}

	out = cliMust(t, d, "mapping", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], id+" ") ||
		!strings.Contains(lines[1], fmt.Sprintf("%d,%d", port1, port2)) || !strings.Contains(lines[1], "waiting: no agent linked on port1") {
		t.Fatalf("mapping ls before the agent:\n%s", out)
	}

	agent := cliAgentFromHint(t, d.Bin, cliMust(t, d, "mapping", "show", id), echo)
	c := cliDialEcho(t, d.Addr(port2), 64<<10)
	if err := cliEcho(c, 64<<10); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !agent.alive() {
		t.Fatal("the agent exited")
	}

	var l control.MappingList
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := json.Unmarshal([]byte(cliMust(t, d, "mapping", "ls", "--json")), &l); err != nil {
			t.Fatalf("mapping ls --json: %v", err)
		}
		// The counters of a closed relay are final once it is no longer active.
		if len(l.Mappings) == 1 && l.Mappings[0].Connections == 0 && l.Mappings[0].ConnectionsTotal >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mapping ls --json: %+v", l)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := l.Mappings[0]
	if m.ID != id || m.Type != "public" || m.Transport != "tcp" || m.Port1 != port1 || m.Port2 != port2 || m.State != "ok" ||
		m.Links < 1 || m.BytesUp < 128<<10 || m.BytesDown < 128<<10 || m.MaxConnections1 != 4 || m.Passcode1 != "" {
		t.Fatalf("mapping ls --json: %+v (passcodes must not be listed)", m)
	}
	out = cliMust(t, d, "mapping", "ls")
	if !strings.Contains(out, "128.0 KiB") || !strings.Contains(out, " ok") {
		t.Fatalf("mapping ls after 2 x 64 KiB each way:\n%s", out)
	}

	out = cliMust(t, d, "mapping", "show", id)
	if cliField(t, out, "passcode1") != pass || cliField(t, out, "state") != "ok" || !strings.Contains(out, "128.0 KiB up, 128.0 KiB down") {
		t.Fatalf("mapping show:\n%s", out)
	}
	var v status.Mapping
	if err := json.Unmarshal([]byte(cliMust(t, d, "mapping", "show", id, "--json")), &v); err != nil || v.Passcode1 != pass || v.Side1.Links < 1 {
		t.Fatalf("mapping show --json: %+v %v", v, err)
	}
	var cs status.Daemon
	if err := json.Unmarshal([]byte(cliMust(t, d, "status", "--json")), &cs); err != nil || cs.PID != d.PID() || len(cs.Mappings) != 1 || cs.Mappings[0].ID != id {
		t.Fatalf("status --json: %+v %v", cs, err)
	}
	if out, _ := e2eRun(t, nil, "__complete", "mapping", "rm", "--config", d.ConfigPath, "--data-dir", d.DataDir, ""); !strings.Contains(out, id+"\tpublic") {
		t.Fatalf("completion of mapping rm lacks the id:\n%s", out)
	}

	// A private mapping with every flag, then a restart: both come back.
	var p status.Mapping
	if err := json.Unmarshal([]byte(cliMust(t, d, "mapping", "add", "--private", "--id", "db", "--transport", "tcp",
		"--max-connections", "2", "--max-connections2", "3", "--heartbeat", "200s", "--idle-timeout", "1h", "--json")), &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != "db" || p.MaxConnections1 != 2 || p.MaxConnections2 != 3 || p.HeartbeatThresholdMs2 != 200000 || p.IdleTimeoutMs != 3600000 || p.Passcode2 == "" {
		t.Fatalf("mapping add --private --json: %+v", p)
	}
	agent.stop(t)
	d.Stop(t)
	d.Start(t)
	var again status.Mapping
	if err := json.Unmarshal([]byte(cliMust(t, d, "mapping", "show", "db", "--json")), &again); err != nil ||
		again.Port1 != p.Port1 || again.Passcode1 != p.Passcode1 || again.Passcode2 != p.Passcode2 || again.IdleTimeoutMs != 3600000 {
		t.Fatalf("after a restart: %+v %v, want %+v", again, err, p)
	}

	// Errors: each names the problem and exits non-zero.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"mapping", "add", "--public", "--id", "db"}, `a mapping with the id "db" exists already`},
		{[]string{"mapping", "add", "--public", "--private"}, "exactly one of --public and --private"},
		{[]string{"mapping", "add"}, "give exactly one of --public"},
		{[]string{"mapping", "add", "--public", "--transport", "pigeon"}, `unknown transport: transport "pigeon"`},
		{[]string{"mapping", "rm", "nope"}, `no mapping has the id "nope"`},
		{[]string{"mapping", "show", "nope"}, `no mapping has the id "nope"`},
		{[]string{"mapping", "rm"}, "accepts 1 arg(s), received 0"},
	} {
		out, code := cliRun(t, d, tt.args...)
		if code == 0 || !strings.Contains(out, tt.want) {
			t.Errorf("%v: exit %d, want non-zero and %q:\n%s", tt.args, code, tt.want, out)
		}
	}

	// The control socket's own checks: a body over 64 KiB, a field this
	// daemon does not know, an add the core refuses.
	ctl := control.NewClient(d.DataDir, "")
	for _, tt := range []struct {
		in   map[string]any
		code int
		want string
	}{
		{map[string]any{"Type": "public", "MaxConnections1": 1, "ID": strings.Repeat("a", 70<<10)}, 413, "request body too large"},
		{map[string]any{"Type": "public", "MaxConnections1": 1, "NoSuchField": 1}, 400, "is the CLI newer than the daemon?"},
		{map[string]any{"Type": "public"}, 400, "maxconnections 0 must be positive"},
	} {
		err := ctl.Call(ctx, "POST", "/mapping", tt.in, nil)
		var ae *control.AnswerError
		if !errors.As(err, &ae) || ae.Status != tt.code || !strings.Contains(ae.Message, tt.want) {
			t.Errorf("control POST /mapping: %v, want %d %q", err, tt.code, tt.want)
		}
	}

	for _, rid := range []string{"db", id} {
		if out := cliMust(t, d, "mapping", "rm", rid); !strings.Contains(out, "removed mapping "+rid) {
			t.Fatalf("rm %s: %s", rid, out)
		}
	}
	if !e2ePortClosed(d.Addr(port2)) || !e2ePortClosed(d.Addr(p.Port1)) {
		t.Fatal("ports still open after mapping rm")
	}
	if out := cliMust(t, d, "mapping", "ls"); !strings.Contains(out, "no mappings") {
		t.Fatalf("ls after rm:\n%s", out)
	}
	if out, code := cliRun(t, d, "mapping", "rm", id); code == 0 || !strings.Contains(out, "no mapping has the id") {
		t.Fatalf("second rm: exit %d\n%s", code, out)
	}
	d.Stop(t)
	d.Start(t) // the removals were stored
	if out := cliMust(t, d, "mapping", "ls", "--json"); strings.TrimSpace(out) != "{\n  \"mappings\": []\n}" {
		t.Fatalf("ls --json after rm and restart:\n%s", out)
	}
}

// TestCLINoDaemon: without a daemon the CLI says so, names the data dir
// and the command that starts one, and exits non-zero.
func TestCLINoDaemon(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(conf, []byte(`{"ports":["7000-7010"],"dev":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"mapping", "ls"}, {"mapping", "ls", "--json"}, {"mapping", "add", "--public"}, {"mapping", "show", "x"},
		{"mapping", "rm", "x"}, {"status", "--json"}, {"status"}, {"stop"},
	} {
		out, code := e2eRun(t, nil, append(args, "--config", conf, "--data-dir", data)...)
		want := fmt.Sprintf("iofog-connector is not running with data dir %s (nothing answers on %s): start it with: iofog-connector start --config %s --data-dir %s",
			data, filepath.Join(data, control.SocketName), conf, data)
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("%v: exit %d, want 1 and %q:\n%s", args, code, want, out)
		}
	}
}

// TestCLICompletion: completion is listed in the help, each script is
// generated, and each shell present on this machine parses its script.
func TestCLICompletion(t *testing.T) {
	if out, code := e2eRun(t, nil, "--help"); code != 0 || !strings.Contains(out, "completion ") || !strings.Contains(out, "mapping ") {
		t.Fatalf("--help does not list completion and mapping:\n%s", out)
	}
	dir := t.TempDir()
	parsed := 0
	for _, sh := range []struct {
		name, head string
		check      []string // the shell's syntax check
	}{
		{"bash", "# bash completion V2 for iofog-connector", []string{"bash", "-n"}},
		{"zsh", "#compdef iofog-connector", []string{"zsh", "-n"}},
		{"fish", "# fish completion for iofog-connector", []string{"fish", "--no-execute"}},
	} {
		out, code := e2eRun(t, nil, "completion", sh.name)
		if code != 0 || !strings.HasPrefix(out, sh.head) || len(out) < 1000 {
			t.Fatalf("completion %s: exit %d, %d bytes:\n%.300s", sh.name, code, len(out), out)
		}
		file := filepath.Join(dir, "completion."+sh.name)
		if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath(sh.check[0]); err != nil {
			t.Logf("%s is not installed: its script is generated, not parsed", sh.name)
			continue
		}
		if b, err := exec.Command(sh.check[0], append(sh.check[1:], file)...).CombinedOutput(); err != nil {
			t.Fatalf("%v %s: %v\n%s", sh.check, file, err, b)
		}
		parsed++
	}
	if parsed == 0 {
		t.Fatal("no shell parsed its script (bash is needed to run these tests)")
	}
	if out, code := e2eRun(t, nil, "__complete", "mapping", ""); code != 0 || !strings.Contains(out, "add\t") || !strings.Contains(out, "ls\t") ||
		!strings.Contains(out, "rm\t") || !strings.Contains(out, "show\t") {
		t.Fatalf("completion of mapping: exit %d\n%s", code, out)
	}
}

// cliAPI posts form to route with the bearer token tok ("" for none) and
// returns the status code and the decoded answer.
func cliAPI(t *testing.T, d *e2eDaemon, route, tok string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", d.API+route, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := netClient().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", route, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: answer is not JSON: %v", route, err)
	}
	return resp.StatusCode, body
}

// cliRewriteSettings rewrites d's settings file with edit applied.
func cliRewriteSettings(t *testing.T, d *e2eDaemon, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.ConfigPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// cliHUP sends SIGHUP to the daemon and waits for the n-th log line
// holding want.
func cliHUP(t *testing.T, d *e2eDaemon, want string, n int) {
	t.Helper()
	if err := syscall.Kill(d.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(d.Logs.String(), want) < n {
		if !d.Running() {
			t.Fatalf("the daemon exited on SIGHUP (%v):\n%s", d.err, d.Logs.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d-th %q within 20s after SIGHUP", n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCLIReloadSIGHUPE2E: SIGHUP applies a new log level, port range and
// API token while a relayed connection carries on undisturbed; a settings
// file that does not load changes nothing and the daemon runs on.
func TestCLIReloadSIGHUPE2E(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	const tok1, tok2 = "cli-reload-token-one-0123", "cli-reload-token-two-4567"
	d := hapiStart(t, hapiOptions{e2eOptions: e2eOptions{Ports: 10, Settings: map[string]any{"api-token": tok1, "log-level": "info"}}, Token: tok1})
	lo2, hi2 := e2ePortRange(t, 10)
	for lo2 <= d.PortHi && hi2 >= d.PortLo {
		lo2, hi2 = e2ePortRange(t, 10)
	}
	echo := e2eEcho(t)
	m := d.AddMapping(t, e2ePublicBody)
	e2eStart(t, d.Bin, e2eAgentArgs("public", d.Addr(m.Port1), m.Passcode1, "--plaintext", "--local", echo, "--pool", "2")...)
	live := cliDialEcho(t, d.Addr(m.Port2), 32<<10) // a relayed connection kept open across the reloads
	defer live.Close()

	if code, _ := cliAPI(t, d, "/api/v2/status", "wrong-token-0123456789", url.Values{"mappingid": {"all"}}); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	const debugLine = `level=DEBUG msg="api request refused"`
	if strings.Contains(d.Logs.String(), debugLine) {
		t.Fatal("a debug line at log-level info")
	}

	cliRewriteSettings(t, d, func(s map[string]any) {
		s["log-level"] = "debug"
		s["ports"] = []string{fmt.Sprintf("%d-%d", lo2, hi2)}
		s["api-token"] = tok2
		s["public-wait-timeout"] = "7s" // needs a restart
	})
	cliHUP(t, d, `msg="settings reloaded (SIGHUP)"`, 1)
	logs := d.Logs.String()
	for _, want := range []string{
		"log-level info -> debug",
		fmt.Sprintf("ports %d-%d (10) -> %d-%d (10)", d.PortLo, d.PortHi, lo2, hi2),
		"api-token replaced",
		`needs a restart; it keeps its running value" key=public-wait-timeout running=0s new=7s`,
	} {
		if !strings.Contains(logs, want) {
			t.Fatalf("reload logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, tok1) || strings.Contains(logs, tok2) {
		t.Fatal("a token is in the logs")
	}
	if err := cliEcho(live, 32<<10); err != nil {
		t.Fatalf("the relayed connection broke on SIGHUP: %v", err)
	}
	if code, _ := cliAPI(t, d, "/api/v2/status", tok1, url.Values{"mappingid": {"all"}}); code != 401 {
		t.Fatalf("old token after the reload: %d, want 401", code)
	}
	if code, _ := cliAPI(t, d, "/api/v2/status", tok2, url.Values{"mappingid": {"all"}}); code != 200 {
		t.Fatalf("new token after the reload: %d, want 200", code)
	}
	if !strings.Contains(d.Logs.String(), debugLine) {
		t.Fatal("no debug line after the reload to log-level debug")
	}
	code, body := cliAPI(t, d, "/api/v2/mapping/add", tok2, url.Values{"mapping": {e2ePublicBody}})
	p1, _ := body["port1"].(float64)
	p2, _ := body["port2"].(float64)
	if code != 200 || int(p1) < lo2 || int(p2) > hi2 {
		t.Fatalf("add after the reload: %d %v, want ports in %d-%d", code, body, lo2, hi2)
	}
	var l control.MappingList
	if err := json.Unmarshal([]byte(cliMust(t, d, "mapping", "ls", "--json")), &l); err != nil || len(l.Mappings) != 2 {
		t.Fatalf("ls: %+v %v", l, err)
	}
	for _, v := range l.Mappings {
		if v.ID == m.ID && (v.Port1 != m.Port1 || v.State != "ok") {
			t.Fatalf("the first mapping changed: %+v", v)
		}
	}

	// Settings that do not load change nothing.
	good, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range []string{`{"ports":`, `{"ports":["70000"],"dev":true,"log-level":"error"}`} {
		if err := os.WriteFile(d.ConfigPath, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		cliHUP(t, d, "the settings do not load; nothing changed", i+1)
		if err := cliEcho(live, 32<<10); err != nil {
			t.Fatalf("the relayed connection broke on a failed reload: %v", err)
		}
		if code, _ := cliAPI(t, d, "/api/v2/status", tok2, url.Values{"mappingid": {"all"}}); code != 200 {
			t.Fatalf("token after a failed reload: %d", code)
		}
		if code, _ := cliAPI(t, d, "/api/v2/status", tok1, url.Values{"mappingid": {"all"}}); code != 401 {
			t.Fatalf("old token after a failed reload: %d", code)
		}
		code, body := cliAPI(t, d, "/api/v2/mapping/add", tok2, url.Values{"mapping": {e2ePublicBody}})
		if p1, _ := body["port1"].(float64); code != 200 || int(p1) < lo2 || int(p1) > hi2 {
			t.Fatalf("add after a failed reload: %d %v", code, body)
		}
	}
	if strings.Count(d.Logs.String(), `msg="settings reloaded (SIGHUP)"`) != 1 {
		t.Fatal("a failed reload logged a summary")
	}

	// `iofog-connector reload` does the same over the control socket and
	// says what changed, or why nothing did (exit 1).
	if err := os.WriteFile(d.ConfigPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	cliRewriteSettings(t, d, func(s map[string]any) { s["log-level"] = "warn" })
	out := cliMust(t, d, "reload")
	if !strings.HasPrefix(out, "settings reloaded: log-level debug -> warn\n") || !strings.Contains(out, `needs a restart, keeps its running value: public-wait-timeout (running "0s", new "7s")`) {
		t.Fatalf("reload:\n%s", out)
	}
	tokFile := filepath.Join(d.Dir, "token")
	if err := os.WriteFile(tokFile, []byte("cli-reload-token-three-89\n"), 0o620); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tokFile, 0o620); err != nil {
		t.Fatal(err)
	}
	cliRewriteSettings(t, d, func(s map[string]any) { delete(s, "api-token"); s["api-token-file"] = tokFile })
	if out, code := cliRun(t, d, "reload"); code != 1 || !strings.Contains(out, "nothing changed") || !strings.Contains(out, "is writable by group or others") {
		t.Fatalf("reload with an unsafe token file: exit %d\n%s", code, out)
	}
	if code, _ := cliAPI(t, d, "/api/v2/status", tok2, url.Values{"mappingid": {"all"}}); code != 200 {
		t.Fatalf("token after a refused reload: %d", code)
	}
	if err := os.Chmod(tokFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cliMust(t, d, "reload"); !strings.Contains(out, "api-token replaced") {
		t.Fatalf("reload with the token file:\n%s", out)
	}
	if code, _ := cliAPI(t, d, "/api/v2/status", "cli-reload-token-three-89", url.Values{"mappingid": {"all"}}); code != 200 {
		t.Fatalf("the token file's token after the reload: %d", code)
	}
	if err := cliEcho(live, 32<<10); err != nil {
		t.Fatalf("the relayed connection broke on reload: %v", err)
	}
	live.Close()
	d.Stop(t)
}
