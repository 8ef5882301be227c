package main

// Packaging tests (issue 11) with real processes on loopback: systemd
// readiness over $NOTIFY_SOCKET, the health probes and the `health`
// command, adoption of a legacy configs.json and `gencert`; the helpers
// shared with the Debian package test (pkg_deb_e2e_test.go) and the
// container image test (pkg_image_e2e_test.go). Helpers are prefixed pkg.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pkgAgentArgs builds the command line of our agent for a public mapping.
// The agent speaks TLS and verifies the connector by default: callers add
// --ca (or --plaintext against a dev-mode daemon).
func pkgAgentArgs(port int, passcode, local string) []string {
	return e2eAgentArgs("public", "127.0.0.1:"+strconv.Itoa(port), passcode, "--local", local)
}

// pkgNotifySocket listens on a unixgram socket as systemd does for
// Type=notify and delivers each datagram on the channel.
func pkgNotifySocket(t *testing.T, dir string) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o777); err != nil { // the service user writes to it
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

// pkgWaitNotify waits up to d for a datagram containing want.
func pkgWaitNotify(t *testing.T, ch <-chan string, want string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case msg := <-ch:
			if strings.Contains(msg, want) {
				return msg
			}
		case <-deadline:
			t.Fatalf("no %q on NOTIFY_SOCKET within %s", want, d)
			return ""
		}
	}
}

// pkgGet GETs base+path and decodes the JSON answer.
func pkgGet(t *testing.T, c *http.Client, base, path string) (int, map[string]any) {
	t.Helper()
	resp, err := c.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		t.Fatalf("GET %s: %d, answer is not JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

// pkgWaitLinks waits until mapping id has at least one agent link.
func pkgWaitLinks(t *testing.T, d *e2eDaemon, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, body, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {id}})
		cancel()
		if err == nil && code == 200 {
			if n, _ := body["links"].(float64); n >= 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mapping %s: no agent link after 30 s (%d %v %v)", id, code, body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pkgRelay sends size random bytes through a public port to the echo
// service behind the agent and requires the same bytes back.
func pkgRelay(t *testing.T, addr string, tc *tls.Config, size int) {
	t.Helper()
	c, err := pkgDial(addr, tc)
	if err != nil {
		t.Fatalf("public client: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	want := make([]byte, size)
	rand.Read(want)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("public client read: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("public client write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("relayed bytes differ from the bytes sent (%d bytes)", size)
	}
}

// pkgDial connects to addr, over TLS when tc is not nil.
func pkgDial(addr string, tc *tls.Config) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tc != nil {
		return tls.DialWithDialer(d, "tcp", addr, tc)
	}
	return d.Dial("tcp", addr)
}

// pkgLegacyAuth does a legacy agent's link set-up and reports whether the
// connector answered AUTHORIZED.
func pkgLegacyAuth(addr, passcode string, tc *tls.Config) (bool, error) {
	c, err := pkgDial(addr, tc)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(passcode)); err != nil {
		return false, err
	}
	got := make([]byte, 10)
	_, err = io.ReadFull(c, got)
	return string(got) == "AUTHORIZED", nil
}

// TestPkgSdNotify: with $NOTIFY_SOCKET set, as systemd sets it for
// Type=notify, the daemon sends READY=1 once its API answers and
// STOPPING=1 when SIGTERM starts the shutdown.
func TestPkgSdNotify(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	sock, ch := pkgNotifySocket(t, t.TempDir())
	d := e2eStartDaemon(t, e2eOptions{Env: []string{"NOTIFY_SOCKET=" + sock}})
	msg := pkgWaitNotify(t, ch, "READY=1", 10*time.Second)
	if !strings.Contains(msg, "MAINPID="+strconv.Itoa(d.PID())) {
		t.Fatalf("READY message %q does not name the daemon's pid %d", msg, d.PID())
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pkgWaitNotify(t, ch, "STOPPING=1", 10*time.Second)
	if err := d.Wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestPkgHealthAndReadiness: /healthz answers while the process runs;
// /readyz answers 503 with a reason (and no mapping id) while a stored
// mapping cannot reopen its port, 200 once it can; the `health` command
// (the image's HEALTHCHECK) follows both.
func TestPkgHealthAndReadiness(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{})
	m := d.AddMapping(t, e2ePublicBody)
	cfg := []string{"--config", d.ConfigPath, "--data-dir", d.DataDir}
	if out, code := e2eRun(t, nil, append([]string{"health", "--ready"}, cfg...)...); code != 0 || !strings.Contains(out, `"ready"`) {
		t.Fatalf("health --ready on a ready daemon: %d %s", code, out)
	}
	d.Stop(t)

	// Something else holds the mapping's public port: it is restored down.
	ln, err := net.Listen("tcp", d.Addr(m.Port2))
	if err != nil {
		t.Fatalf("holding port2: %v", err)
	}
	d.Start(t)
	c := netClient()
	if code, body := pkgGet(t, c, d.API, "/healthz"); code != 200 || body["status"] != "ok" {
		t.Fatalf("/healthz with a mapping down: %d %v", code, body)
	}
	code, body := pkgGet(t, c, d.API, "/readyz")
	if code != 503 || body["down"] != float64(1) || body["errormessage"] == nil {
		t.Fatalf("/readyz with a mapping down: %d %v, want 503 down=1", code, body)
	}
	if raw, _ := json.Marshal(body); strings.Contains(string(raw), m.ID) {
		t.Fatalf("/readyz reveals the mapping id: %s", raw)
	}
	if out, code := e2eRun(t, nil, append([]string{"health", "--ready"}, cfg...)...); code == 0 || !strings.Contains(out, "503") {
		t.Fatalf("health --ready with a mapping down: exit %d: %s", code, out)
	}
	if out, code := e2eRun(t, nil, append([]string{"health"}, cfg...)...); code != 0 {
		t.Fatalf("health with a mapping down (process up): exit %d: %s", code, out)
	}
	d.Stop(t)
	ln.Close()

	d.Start(t)
	if code, body := pkgGet(t, c, d.API, "/readyz"); code != 200 || body["status"] != "ready" || body["mappings"] != float64(1) {
		t.Fatalf("/readyz once the port is free: %d %v", code, body)
	}
	d.Stop(t)
	if out, code := e2eRun(t, nil, append([]string{"health"}, cfg...)...); code == 0 {
		t.Fatalf("health with the daemon stopped: exit 0: %s", out)
	}
}

// TestPkgHealthCommandPinsCert: over HTTPS the `health` command trusts
// exactly the configured tls-cert, whatever names it carries.
func TestPkgHealthCommandPinsCert(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{TLS: true})
	if out, code := e2eRun(t, nil, "health", "--config", d.ConfigPath); code != 0 || !strings.Contains(out, `"ok"`) {
		t.Fatalf("health over HTTPS: exit %d: %s", code, out)
	}
	// The same settings naming another certificate: the probe refuses.
	other := t.TempDir()
	e2eWriteCert(t, other)
	b, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s["tls-cert"] = filepath.Join(other, "server-cert.pem")
	s["tls-key"] = filepath.Join(other, "server-key.pem")
	b, _ = json.Marshal(s)
	cfg := filepath.Join(other, "iofog-connector.conf")
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := e2eRun(t, nil, "health", "--config", cfg); code == 0 || !strings.Contains(out, "certificate other than tls-cert") {
		t.Fatalf("health against a daemon with another certificate: exit %d: %s", code, out)
	}
}

// TestPkgAdoptLegacyStore: a legacy configs.json beside the settings file
// is copied into an empty data dir on start (mappings, ports and passcodes
// kept, the original untouched), never again once the data dir has a
// store, and a damaged one stops start-up naming it, writing nothing.
func TestPkgAdoptLegacyStore(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{})
	m := d.AddMapping(t, e2ePublicBody)
	d.Stop(t)
	stored, err := os.ReadFile(filepath.Join(d.DataDir, "configs.json"))
	if err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(d.Dir, "configs.json")
	if err := os.WriteFile(legacy, stored, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(d.DataDir); err != nil {
		t.Fatal(err)
	}

	d.Start(t)
	if n := strings.Count(d.Logs.String(), "legacy mappings file adopted"); n != 1 {
		t.Fatalf("adoption logged %d times, want 1", n)
	}
	ok, err := pkgLegacyAuth(d.Addr(m.Port1), m.Passcode1, nil)
	if err != nil || !ok {
		t.Fatalf("adopted mapping's port1 with its passcode: authorized=%v err=%v", ok, err)
	}
	d.RemoveMapping(t, m.ID)
	d.Stop(t)
	if b, err := os.ReadFile(legacy); err != nil || !bytes.Equal(b, stored) {
		t.Fatalf("legacy file changed or gone: %v", err)
	}

	// The data dir has a store now: the legacy file is not adopted again
	// and the removed mapping stays removed.
	d.Start(t)
	if n := strings.Count(d.Logs.String(), "legacy mappings file adopted"); n != 1 {
		t.Fatalf("adoption logged %d times after a restart, want 1", n)
	}
	code, _, err := d.Post(context.Background(), "/api/v2/status", url.Values{"mappingid": {m.ID}})
	if err != nil || code != 404 {
		t.Fatalf("removed mapping after restart: %d %v, want 404", code, err)
	}
	d.Stop(t)

	// A damaged legacy file and an empty data dir: start-up stops.
	if err := os.WriteFile(legacy, []byte("null"), 0o640); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "data")
	out, exit := e2eRun(t, nil, "start", "--config", d.ConfigPath, "--data-dir", empty)
	if exit == 0 || !strings.Contains(out, legacy) || !strings.Contains(out, "not adopted") {
		t.Fatalf("start with a damaged legacy file: exit %d: %s", exit, out)
	}
	if _, err := os.Stat(filepath.Join(empty, "configs.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a damaged legacy file left configs.json in the data dir: %v", err)
	}
	if b, _ := os.ReadFile(legacy); string(b) != "null" {
		t.Fatalf("damaged legacy file was rewritten: %q", b)
	}
}

// TestPkgGenCert: gencert writes a key only its owner reads and a
// certificate that matches it, and never overwrites either.
func TestPkgGenCert(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if out, code := e2eRun(t, nil, "gencert", "--cert", cert, "--key", key, "--host", "connector.example.com", "--host", "192.0.2.7"); code != 0 {
		t.Fatalf("gencert: exit %d: %s", code, out)
	}
	for p, want := range map[string]os.FileMode{cert: 0o644, key: 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: %v mode %v, want %v", p, err, st.Mode().Perm(), want)
		}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatalf("key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("connector.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(key)
	if out, code := e2eRun(t, nil, "gencert", "--cert", filepath.Join(dir, "c2.pem"), "--key", key); code == 0 || !strings.Contains(out, "never overwritten") {
		t.Fatalf("gencert over an existing key: exit %d: %s", code, out)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Fatal("existing key was changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "c2.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused gencert left a certificate: %v", err)
	}
}
