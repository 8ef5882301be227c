package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/api/control"
)

// legacyAuth speaks the legacy agent handshake on addr: the passcode in
// one write, then exactly "AUTHORIZED" back. It reports whether the
// connector accepted the passcode.
func legacyAuth(addr, pass string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(pass)); err != nil {
		return false, err
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c, buf); err != nil {
		return false, nil // closed on us: refused
	}
	return string(buf) == "AUTHORIZED", nil
}

func storedIDs(t *testing.T, dataDir string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "configs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Mappings []struct {
			ID string `json:"id"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("configs.json is not loadable: %v\n%s", err, b)
	}
	ids := map[string]bool{}
	for _, m := range f.Mappings {
		ids[m.ID] = true
	}
	return ids
}

// TestRestartRestoresMappings: SIGTERM stops the daemon cleanly (exit 0,
// ports closed, configs.json flushed); a new daemon reopens every mapping
// on the same ports with the same passcodes.
func TestRestartRestoresMappings(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	pub := d.AddMapping(t, e2ePublicBody)
	priv := d.AddMapping(t, e2ePrivateBody)
	gone := d.AddMapping(t, e2ePublicBody)
	d.RemoveMapping(t, gone.ID)
	start := time.Now()
	d.Stop(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s", took)
	}
	for _, p := range []int{pub.Port1, pub.Port2, priv.Port1, priv.Port2} {
		if !e2ePortClosed(d.Addr(p)) {
			t.Fatalf("port %d open after the daemon exited", p)
		}
	}
	if ids := storedIDs(t, d.DataDir); len(ids) != 2 || !ids[pub.ID] || !ids[priv.ID] {
		t.Fatalf("configs.json after shutdown holds %v", ids)
	}
	if !strings.Contains(d.Logs.String(), "stopped") {
		t.Fatalf("no shutdown log:\n%s", d.Logs.String())
	}

	d.Start(t)
	ctx := e2eCtx(t, 20*time.Second)
	for _, m := range []e2eMapping{pub, priv} {
		code, body, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {m.ID}})
		if err != nil || code != 200 || body["port1"] != float64(m.Port1) || body["port2"] != float64(m.Port2) || body["error"] != nil {
			t.Fatalf("restored %s: %d %v %v", m.ID, code, body, err)
		}
	}
	if st := d.statusAll(t); st["mappings"] != 2.0 || st["availablePorts"] != 6.0 {
		t.Fatalf("status after restart: %v", st)
	}
	// Same passcodes: the legacy handshake accepts the old one and refuses
	// another.
	checks := []struct {
		port       int
		pass       string
		authorized bool
	}{
		{pub.Port1, pub.Passcode1, true},
		{priv.Port1, priv.Passcode1, true},
		{priv.Port2, priv.Passcode2, true},
		{priv.Port2, priv.Passcode1, false},
	}
	for _, c := range checks {
		ok, err := legacyAuth(d.Addr(c.port), c.pass)
		if err != nil || ok != c.authorized {
			t.Fatalf("passcode on port %d: authorized=%v err=%v, want %v", c.port, ok, err, c.authorized)
		}
	}
	e2eWaitPort(t, d.Addr(pub.Port2), 5*time.Second)
	// The removed mapping stays removed, and its ports can be handed out.
	code, _, _ := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {gone.ID}})
	if code != 404 {
		t.Fatalf("removed mapping came back: %d", code)
	}
}

// TestKill9DuringBurstLosesNothing: 8 clients add mappings; the daemon is
// killed with SIGKILL in the middle. Every add that was answered 200 is
// there after a restart, and the store loads.
func TestKill9DuringBurstLosesNothing(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 1000})
	var (
		mu    sync.Mutex
		acked []e2eMapping
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	killAt := 60
	killed := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60 && ctx.Err() == nil; i++ {
				m, code, err := d.TryAddMapping(ctx, e2ePrivateBody)
				if err != nil {
					return // the daemon died mid-request: not acknowledged
				}
				if code != 200 {
					t.Errorf("add answered %d", code)
					return
				}
				mu.Lock()
				acked = append(acked, m)
				n := len(acked)
				mu.Unlock()
				if n == killAt {
					_ = d.cmd.Process.Kill() // SIGKILL, by PID; reaped below
					close(killed)
				}
			}
		}()
	}
	wg.Wait()
	if d.Running() {
		d.Kill9(t)
	}
	select {
	case <-killed:
	default:
		t.Fatalf("only %d adds acknowledged; the kill never happened", len(acked))
	}
	if len(acked) < killAt {
		t.Fatalf("acknowledged %d < %d", len(acked), killAt)
	}
	d.Start(t)
	st := d.statusAll(t)
	if got := int(st["mappings"].(float64)); got < len(acked) {
		t.Fatalf("restart has %d mappings, %d were acknowledged", got, len(acked))
	}
	rctx := e2eCtx(t, 60*time.Second)
	for _, m := range acked {
		code, body, err := d.Post(rctx, "/api/v2/status", url.Values{"mappingid": {m.ID}})
		if err != nil || code != 200 || body["port1"] != float64(m.Port1) || body["port2"] != float64(m.Port2) {
			t.Fatalf("acknowledged mapping %s lost or moved: %d %v %v", m.ID, code, body, err)
		}
	}
	t.Logf("%d adds acknowledged before and around the kill; all restored", len(acked))
	d.Stop(t)
	if ids := storedIDs(t, d.DataDir); len(ids) < len(acked) {
		t.Fatalf("configs.json holds %d mappings, want >= %d", len(ids), len(acked))
	}
}

// TestCorruptStoreStopsStartup: a damaged configs.json stops start-up with
// a clear error and is left byte for byte.
func TestCorruptStoreStopsStartup(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	d.AddMapping(t, e2ePublicBody)
	d.Stop(t)
	path := filepath.Join(d.DataDir, "configs.json")
	corrupt := []byte(`{"mappings":[{"id":"half-writ`)
	if err := os.WriteFile(path, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := e2eRun(t, nil, "start", "--config", d.ConfigPath, "--data-dir", d.DataDir)
	if code == 0 || !strings.Contains(out, "corrupt") || !strings.Contains(out, "configs.json") {
		t.Fatalf("start on a corrupt store: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(path); string(b) != string(corrupt) {
		t.Fatalf("corrupt store was overwritten: %q", b)
	}
}

// TestBadSettingsStopStartup: a bad setting names its key and value and
// exits non-zero, from the file, the environment or a flag.
func TestBadSettingsStopStartup(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.conf", `{"ports":["21000-21010"],"exclude":[],"broker":12345,"address":"127.0.0.1","dev":true,"bind":"127.0.0.1"}`)
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad range", nil, []string{"--config", write("a.conf", `{"ports":["7000-7010","7000-"],"dev":true}`)}, `ports[1]: "7000-" is not a port or a range`},
		{"bad exclude", nil, []string{"--config", write("b.conf", `{"ports":["7000-7010"],"exclude":["x"],"dev":true}`)}, `exclude[0]: "x" is not a port or a range`},
		{"bad dev", nil, []string{"--config", write("c.conf", `{"ports":["7000-7010"],"dev":"maybe"}`)}, `dev: "maybe"`},
		{"bad broker", nil, []string{"--config", write("d.conf", `{"ports":["7000-7010"],"broker":70000,"dev":true}`)}, `broker: 70000`},
		{"not json", nil, []string{"--config", write("e.conf", `{"ports":`)}, "not valid JSON"},
		{"missing file", nil, []string{"--config", filepath.Join(dir, "nope.conf")}, "nope.conf"},
		{"bad env", []string{"IOFOG_CONNECTOR_PORTS=9000-8000"}, []string{"--config", good}, `ports[0]: "9000-8000" is not a port or a range`},
		{"bad flag", nil, []string{"--config", good, "--api-address", "nowhere"}, `api-address: "nowhere"`},
		{"unknown transport", []string{"IOFOG_CONNECTOR_TRANSPORT=pigeon"}, []string{"--config", good, "--data-dir", filepath.Join(dir, "data")}, `"pigeon" is not available`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := e2eRun(t, tt.env, append([]string{"start"}, tt.args...)...)
			if code == 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant non-zero and %q", code, out, tt.want)
			}
		})
	}
}

// TestStatusAndStopCommands: the CLI reaches the daemon over the control
// socket in the data dir (mode 0600), never over the network.
func TestStatusAndStopCommands(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	m := d.AddMapping(t, e2ePublicBody)
	fi, err := os.Stat(filepath.Join(d.DataDir, control.SocketName))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	out, code := e2eRun(t, nil, "status", "--config", d.ConfigPath, "--data-dir", d.DataDir)
	for _, want := range []string{version, "up ", m.ID, fmt.Sprintf("%d,%d", m.Port1, m.Port2), "Free ports:         8", "Agent links:", "Public connections:", "Mappings:           1"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status exit %d lacks %q:\n%s", code, want, out)
		}
	}
	out, code = e2eRun(t, nil, "stop", "--config", d.ConfigPath, "--data-dir", d.DataDir)
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop exit %d:\n%s", code, out)
	}
	if err := d.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("daemon exit after stop: %v", err)
	}
	out, code = e2eRun(t, nil, "status", "--config", d.ConfigPath, "--data-dir", d.DataDir)
	if code == 0 || !strings.Contains(out, "not running") {
		t.Fatalf("status of a stopped daemon: exit %d\n%s", code, out)
	}
}

// TestCLIVersionHelpUnknown: the legacy names of the CLI.
func TestCLIVersionHelpUnknown(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-v"}, {"--version"}} {
		out, code := e2eRun(t, nil, args...)
		if code != 0 || strings.TrimSpace(out) != "iofog-connector "+version {
			t.Fatalf("%v: exit %d %q", args, code, out)
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"-?"}, {"--help"}} {
		out, code := e2eRun(t, nil, args...)
		if code != 0 || !strings.Contains(out, "start") || !strings.Contains(out, "status") || !strings.Contains(out, "Usage:") {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	out, code := e2eRun(t, nil, "frobnicate")
	if code == 0 || !strings.Contains(out, `unknown command "frobnicate"`) || !strings.Contains(out, "Usage:") {
		t.Fatalf("unknown command: exit %d\n%s", code, out)
	}
}

// TestDevDefaults: with no settings file the daemon runs on built-in dev
// defaults (HTTP API, a port range, a data dir under $HOME) and says so.
// The API address and bind host are overridden through flag and
// environment so the test stays on loopback and a free port.
func TestDevDefaults(t *testing.T) {
	if _, err := os.Stat(defaultSettingsFile); err == nil {
		t.Skipf("%s exists on this machine; dev defaults do not apply", defaultSettingsFile)
	}
	home := t.TempDir()
	lo, hi := e2ePortRange(t, 10)
	api := fmt.Sprintf("127.0.0.1:%d", e2eFreePort(t))
	d := &e2eDaemon{t: t, Bin: e2eBinary(t), Logs: &e2eBuffer{}, APIAddr: api, API: "http://" + api}
	d.Client = netClient()
	env := []string{"HOME=" + home, "IOFOG_CONNECTOR_BIND=127.0.0.1", fmt.Sprintf("IOFOG_CONNECTOR_PORTS=%d-%d", lo, hi), "IOFOG_CONNECTOR_API_ADDRESS=" + api}
	d.env = env
	d.ConfigPath = ""
	d.startRaw(t, "start")
	defer func() {
		if d.Running() {
			d.Kill9(t)
		}
	}()
	m := d.AddMapping(t, e2ePublicBody)
	if m.Port1 < lo || m.Port2 > hi {
		t.Fatalf("mapping %+v outside the env port range %d-%d", m, lo, hi)
	}
	dataDir := filepath.Join(home, ".local", "state", "iofog-connector")
	if _, err := os.Stat(filepath.Join(dataDir, "configs.journal")); err != nil {
		t.Fatalf("dev data dir not used: %v", err)
	}
	if !strings.Contains(d.Logs.String(), "built-in dev defaults") {
		t.Fatalf("no dev-defaults log line:\n%s", d.Logs.String())
	}
	out, code := e2eRun(t, env, "stop")
	if code != 0 {
		t.Fatalf("stop on dev defaults: exit %d\n%s", code, out)
	}
	if err := d.Wait(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// restartEchoServer serves a loopback echo service until the test ends.
func restartEchoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// restartEcho sends size random bytes through addr (TLS when cfg is not nil)
// and checks they come back unchanged.
func restartEcho(addr string, cfg *tls.Config, size int) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	want := make([]byte, size)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		errc <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%d bytes came back different", size)
	}
	return nil
}

// TestPublicPipeSurvivesRestart: a public pipe relays through the real
// daemon and the real agent, over HTTP/TCP and over HTTPS/TLS; after the
// daemon restarts, the agent reconnects to the same port with the same
// passcode and the same public port relays again.
func TestPublicPipeSurvivesRestart(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			d := e2eStartDaemon(t, e2eOptions{Ports: 10, TLS: useTLS})
			m := d.AddMapping(t, e2ePublicBody)
			args := []string{"agent", "public", "--connector", d.Addr(m.Port1), "--passcode", m.Passcode1,
				"--local", restartEchoServer(t), "--pool", "2"}
			var clientTLS *tls.Config
			if useTLS {
				ca := filepath.Join(d.Dir, "server-cert.pem")
				args = append(args, "--ca", ca)
				clientTLS = &tls.Config{RootCAs: d.CertPool}
			} else {
				args = append(args, "--plaintext")
			}
			agentLogs := &e2eBuffer{}
			agent := exec.Command(d.Bin, args...)
			agent.Stdout, agent.Stderr = agentLogs, agentLogs
			agent.Env = os.Environ()
			if err := agent.Start(); err != nil {
				t.Fatal(err)
			}
			agentDone := make(chan struct{})
			go func() { agent.Wait(); close(agentDone) }()
			t.Cleanup(func() {
				agent.Process.Kill() // by PID: the agent this test started
				<-agentDone
				if t.Failed() {
					t.Logf("agent logs:\n%s", agentLogs.String())
				}
			})
			echo := func(what string) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for {
					err := restartEcho(d.Addr(m.Port2), clientTLS, 256<<10)
					if err == nil {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: no echo through the public port: %v", what, err)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			echo("first daemon")
			d.Stop(t)
			d.Start(t)
			echo("after restart")
			d.RemoveMapping(t, m.ID)
			if err := restartEcho(d.Addr(m.Port2), clientTLS, 10); err == nil {
				t.Fatal("public port still relays after remove")
			}
		})
	}
}

// legacyLink opens an authenticated legacy link (passcode, AUTHORIZED) and
// returns it, or nil when the connector refused it.
func legacyLink(t *testing.T, addr, pass string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(pass)); err != nil {
		c.Close()
		return nil
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "AUTHORIZED" {
		c.Close()
		return nil
	}
	c.SetDeadline(time.Time{})
	return c
}

// TestMappingLimitsEnforced: the mapping's maxconnections caps agent links
// and its heartbeatabsencethreshold closes a silent link, both as given to
// the API.
func TestMappingLimitsEnforced(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	m := d.AddMapping(t, `{"type":"public","maxconnections":2,"heartbeatabsencethreshold":1500}`)
	addr := d.Addr(m.Port1)
	var links []net.Conn
	for range 2 {
		c := legacyLink(t, addr, m.Passcode1)
		if c == nil {
			t.Fatal("link within maxconnections refused")
		}
		defer c.Close()
		links = append(links, c)
	}
	if c := legacyLink(t, addr, m.Passcode1); c != nil {
		c.Close()
		t.Fatal("a third link was accepted with maxconnections 2")
	}
	// The links stay silent: the connector must close them after about
	// 1.5 s (the watchdog allows 15 s).
	for i, c := range links {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		buf := make([]byte, 64)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue // a BEAT from the connector
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("silent link %d still open after 15 s with a 1.5 s threshold", i)
			}
			break
		}
	}
	// With the silent links gone, a new link fits under the cap again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c := legacyLink(t, addr, m.Passcode1); c != nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no link accepted after the silent ones were closed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLogFile: with log-file set, the daemon logs there (the legacy layout
// kept logs under /var/log/iofog-connector).
func TestLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iofog-connector.log")
	d := e2eStartDaemon(t, e2eOptions{Ports: 4, Settings: map[string]any{"log-file": path}})
	m := d.AddMapping(t, e2ePublicBody)
	d.Stop(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"iofog-connector started", "mapping added", m.ID, "stopped"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("log file lacks %q:\n%s", want, b)
		}
	}
}
