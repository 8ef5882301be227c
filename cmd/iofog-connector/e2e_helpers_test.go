package main

// Shared helpers for end-to-end tests that run the real iofog-connector
// binary on loopback. Colleagues' e2e tests (pipe, mux, plugin) call them;
// keep the signatures stable.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// e2eBinary and e2ePluginDir: e2e_build_test.go.

// e2ePortRange finds n consecutive ports on 127.0.0.1 that are free now,
// below the kernel's ephemeral range, and returns the first and last.
func e2ePortRange(t testing.TB, n int) (lo, hi int) {
	t.Helper()
	for range 200 {
		lo = 20000 + mrand.IntN(12000-n)
		var lns []net.Listener
		ok := true
		for p := lo; p < lo+n; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return lo, lo + n - 1
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0, 0
}

// e2eFreePort returns a port the kernel just handed out on 127.0.0.1.
func e2eFreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// e2eOptions describe a daemon to start.
type e2eOptions struct {
	// Ports is the number of ports in the daemon's pool (consecutive, on
	// loopback). Zero means 40.
	Ports int
	// TLS runs with dev=false: HTTPS API and TLS agent and public ports,
	// with a certificate generated for the test.
	TLS bool
	// Settings are extra keys of the settings file (transport, plugins,
	// public-wait-timeout...).
	Settings map[string]any
	// Env are extra environment variables, "KEY=VALUE".
	Env []string
}

// e2eDaemon is a connector process started by a test. It is stopped by
// its PID when the test ends.
type e2eDaemon struct {
	t          testing.TB
	Bin        string
	Dir        string // holds the settings file (and certificates)
	DataDir    string
	ConfigPath string
	APIAddr    string // host:port
	API        string // base URL: http://... or https://...
	PortLo     int    // first port of the pool
	PortHi     int    // last port of the pool
	CertPool   *x509.CertPool
	CertPEM    []byte // the server certificate (TLS only), as agents get it
	Client     *http.Client
	Logs       *e2eBuffer

	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, once done is closed
	env  []string
}

// e2eBuffer is a goroutine-safe log buffer.
type e2eBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *e2eBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *e2eBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// e2eStartDaemon writes a settings file for opts, starts the daemon and
// waits until its API answers. The daemon is killed (by PID) at cleanup
// if the test left it running.
func e2eStartDaemon(t testing.TB, opts e2eOptions) *e2eDaemon {
	t.Helper()
	if opts.Ports == 0 {
		opts.Ports = 40
	}
	dir := t.TempDir()
	d := &e2eDaemon{t: t, Bin: e2eBinary(t), Dir: dir, DataDir: filepath.Join(dir, "data"), Logs: &e2eBuffer{}, env: opts.Env}
	d.PortLo, d.PortHi = e2ePortRange(t, opts.Ports)
	d.APIAddr = "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	settings := map[string]any{
		"ports":       []string{fmt.Sprintf("%d-%d", d.PortLo, d.PortHi)},
		"exclude":     []string{},
		"broker":      12345,
		"address":     "127.0.0.1",
		"dev":         !opts.TLS,
		"api-address": d.APIAddr,
		"bind":        "127.0.0.1",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	d.API = "http://" + d.APIAddr
	d.Client = netClient()
	if opts.TLS {
		d.CertPEM, d.CertPool = e2eWriteCert(t, dir)
		d.API = "https://" + d.APIAddr
		d.Client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.CertPool}}
	}
	b, _ := json.MarshalIndent(settings, "", "  ")
	d.ConfigPath = filepath.Join(dir, "iofog-connector.conf")
	if err := os.WriteFile(d.ConfigPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start(t)
	d.cleanup(t)
	return d
}

// cleanup makes the test's cleanup kill the daemon (by PID) if the test
// left it running, fail the test if the daemon reported a data race, and
// log the daemon's output if the test failed.
func (d *e2eDaemon) cleanup(t testing.TB) {
	t.Cleanup(func() {
		if d.Running() {
			d.Kill9(t)
		}
		if strings.Contains(d.Logs.String(), "WARNING: DATA RACE") {
			t.Errorf("the daemon reported a data race")
		}
		if t.Failed() {
			t.Logf("daemon logs:\n%s", d.Logs.String())
		}
	})
}

// Start starts the daemon (again) on the same settings and data dir and
// waits for its API.
func (d *e2eDaemon) Start(t testing.TB) {
	t.Helper()
	d.startRaw(t, "start", "--config", d.ConfigPath, "--data-dir", d.DataDir)
}

// startRaw starts the binary with args and waits for the API at d.API.
func (d *e2eDaemon) startRaw(t testing.TB, args ...string) {
	t.Helper()
	d.cmd = exec.Command(d.Bin, args...)
	d.cmd.Env = append(os.Environ(), d.env...)
	d.cmd.Stdout, d.cmd.Stderr = d.Logs, d.Logs
	d.done = make(chan struct{})
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func(cmd *exec.Cmd, done chan struct{}) {
		d.err = cmd.Wait()
		close(done)
	}(d.cmd, d.done)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		code, _, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {"all"}})
		if err == nil && code == 200 {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("daemon exited during start-up (%v):\n%s", d.err, d.Logs.String())
		case <-ctx.Done():
			t.Fatalf("daemon API not answering after 30s (%v):\n%s", err, d.Logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PID returns the daemon's process id.
func (d *e2eDaemon) PID() int { return d.cmd.Process.Pid }

// Running reports whether the daemon process is still running.
func (d *e2eDaemon) Running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Wait waits up to timeout for the daemon to exit and returns its exit
// error (nil for exit code 0).
func (d *e2eDaemon) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		t.Fatalf("daemon (pid %d) still running after %s", d.PID(), timeout)
		return nil
	}
}

// Stop sends SIGTERM and waits up to 10 s for a clean exit (code 0).
func (d *e2eDaemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.Logs.String())
	}
}

// Kill9 kills the daemon with SIGKILL and waits for it.
func (d *e2eDaemon) Kill9(t testing.TB) {
	t.Helper()
	_ = d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon (pid %d) survived SIGKILL", d.PID())
	}
}

// Post sends a form to the API and decodes the JSON answer. It fails
// (err) on a transport error or a body that is not JSON.
func (d *e2eDaemon) Post(ctx context.Context, route string, form url.Values) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", d.API+route, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s: answer is not JSON: %w", route, err)
	}
	return resp.StatusCode, body, nil
}

// e2eMapping is the API's answer to an add.
type e2eMapping struct {
	ID        string `json:"id"`
	Port1     int    `json:"port1"`
	Port2     int    `json:"port2"`
	Passcode1 string `json:"passcode1"`
	Passcode2 string `json:"passcode2"`
	Transport string `json:"transport"`
}

// e2ePublicBody and e2ePrivateBody are the bodies the ioFog Controller
// sends.
const (
	e2ePublicBody  = `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000}`
	e2ePrivateBody = `{"type":"private","maxconnectionsport1":1, "maxconnectionsport2":1, "heartbeatabsencethresholdport1":200000, "heartbeatabsencethresholdport2":200000}`
)

// AddMapping adds a mapping with body (the JSON of the "mapping" field) and
// fails the test unless the API answers 200 with ports and passcodes.
func (d *e2eDaemon) AddMapping(t testing.TB, body string) e2eMapping {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, code, err := d.TryAddMapping(ctx, body)
	if err != nil || code != 200 {
		t.Fatalf("add %s: %d %v", body, code, err)
	}
	if m.ID == "" || m.Port1 == 0 || m.Port2 == 0 || m.Passcode1 == "" {
		t.Fatalf("add %s: incomplete answer %+v", body, m)
	}
	return m
}

// TryAddMapping adds a mapping and returns the answer and status code.
func (d *e2eDaemon) TryAddMapping(ctx context.Context, body string) (e2eMapping, int, error) {
	var m e2eMapping
	req, err := http.NewRequestWithContext(ctx, "POST", d.API+"/api/v2/mapping/add", strings.NewReader(url.Values{"mapping": {body}}.Encode()))
	if err != nil {
		return m, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.Client.Do(req)
	if err != nil {
		return m, 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return m, resp.StatusCode, fmt.Errorf("answer is not JSON: %w", err)
	}
	return m, resp.StatusCode, nil
}

// RemoveMapping removes mapping id and fails the test unless it answers 200.
func (d *e2eDaemon) RemoveMapping(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, body, err := d.Post(ctx, "/api/v2/mapping/remove", url.Values{"mappingid": {id}})
	if err != nil || code != 200 {
		t.Fatalf("remove %s: %d %v %v", id, code, body, err)
	}
}

// Addr returns 127.0.0.1:port.
func (d *e2eDaemon) Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// e2eWaitPort waits up to timeout for addr to accept TCP connections.
func e2eWaitPort(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not accepting after %s: %v", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2ePortClosed reports whether nothing accepts TCP on addr.
func e2ePortClosed(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// e2eWriteCert generates a self-signed certificate for 127.0.0.1, ::1 and
// localhost, writes server-cert.pem and server-key.pem into dir and returns
// the certificate PEM and a pool trusting exactly it.
func e2eWriteCert(t testing.TB, dir string) ([]byte, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "iofog-connector-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(filepath.Join(dir, "server-cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server-key.pem"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certPEM, pool
}

// e2eRun runs the binary with args (and extra env) and returns its
// combined output and exit code, with a 30 s watchdog.
func e2eRun(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("run %v: %v", args, err)
	return "", -1
}

// netClient returns the HTTP client of plain-HTTP daemons.
func netClient() *http.Client { return &http.Client{Timeout: 20 * time.Second} }
