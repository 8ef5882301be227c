package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// errAPI is returned when the connector's REST API answers with an error.
var errAPI = errors.New("connector-bench: connector API error")

// daemonOptions configures one connector daemon started by the harness.
type daemonOptions struct {
	Bin       string // iofog-connector binary
	Dir       string // holds the settings file, certificates and data dir
	Dev       bool   // false: TLS on agent and public ports and HTTPS API
	Transport string // default transport of the daemon ("" leaves it out)
	PluginDir string // "" leaves it out
	Ports     string // pool of ports, "A-B"; "" means controlPorts
	Pprof     bool   // serve Go's profiling endpoints (child.pprof)
}

// daemon is a running iofog-connector started by the harness.
type daemon struct {
	opts    daemonOptions
	proc    *child
	apiBase string
	client  *http.Client
	tlsCfg  *tls.Config // public-port client config in TLS mode, else nil
	caFile  string
	cfgPath string
	dataDir string
	log     *slog.Logger
	cl      *cleanup
}

// newDaemon writes the settings (and in TLS mode a certificate) into
// opts.Dir; start runs it.
func newDaemon(cl *cleanup, log *slog.Logger, opts daemonOptions) (*daemon, error) {
	d := &daemon{opts: opts, log: log, cl: cl, client: &http.Client{Timeout: 10 * time.Second}}
	d.cfgPath = filepath.Join(opts.Dir, "iofog-connector.conf")
	d.dataDir = filepath.Join(opts.Dir, "data")
	if err := os.MkdirAll(d.dataDir, 0o755); err != nil {
		return nil, err
	}
	scheme := "http"
	if !opts.Dev {
		cfg, caFile, err := writeServerCert(opts.Dir)
		if err != nil {
			return nil, err
		}
		d.tlsCfg, d.caFile = cfg, caFile
		d.client.Transport = &http.Transport{TLSClientConfig: cfg.Clone(), MaxIdleConnsPerHost: 16}
		scheme = "https"
	} else {
		d.client.Transport = &http.Transport{MaxIdleConnsPerHost: 16}
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	api := "127.0.0.1:" + strconv.Itoa(apiPort)
	d.apiBase = scheme + "://" + api
	ports := opts.Ports
	if ports == "" {
		ports = controlPorts
	}
	settings := map[string]any{
		"ports":       []string{ports},
		"exclude":     []string{},
		"broker":      12345,
		"address":     "127.0.0.1",
		"dev":         opts.Dev,
		"api-address": api,
		"bind":        "127.0.0.1",
	}
	if opts.Transport != "" {
		settings["transport"] = opts.Transport
	}
	if opts.PluginDir != "" {
		settings["plugins"] = map[string]any{"dir": opts.PluginDir}
	}
	b, _ := json.MarshalIndent(settings, "", "  ")
	if err := os.WriteFile(d.cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	return d, nil
}

// start runs the daemon and waits until its API answers status; it returns
// the time from exec to the first answer reporting wantMappings mappings
// (any count when wantMappings < 0).
func (d *daemon) start(ctx context.Context, wantMappings int, within time.Duration) (time.Duration, error) {
	t0 := time.Now()
	env, paddr, err := pprofEnv(d.opts.Pprof)
	if err != nil {
		return 0, err
	}
	c, err := startChildEnv(d.cl, d.log, "iofog-connector", nil, env, d.opts.Bin,
		"start", "--config", d.cfgPath, "--data-dir", d.dataDir)
	if err != nil {
		return 0, err
	}
	d.proc = c
	c.pprof = paddr
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		n, err := d.statusAll(ctx)
		if err == nil && (wantMappings < 0 || n == wantMappings) {
			return time.Since(t0), nil
		}
		if !c.alive() {
			return 0, fmt.Errorf("connector-bench: daemon exited: %v: %s", c.err, c.out.String())
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("connector-bench: daemon status (have %d mappings, want %d, last error %v): %w", n, wantMappings, err, errTimeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// kill stops the daemon by PID with SIGKILL: what it acknowledged must
// have been made durable already.
func (d *daemon) kill() {
	if d.proc != nil && d.proc.alive() {
		_ = d.proc.cmd.Process.Kill()
		<-d.proc.done
	}
}

// post calls one API route with a form and decodes the JSON answer.
func (d *daemon) post(ctx context.Context, route string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.apiBase+route, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s: %d %s", errAPI, route, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: %s: %v: %q", errAPI, route, err, body)
	}
	return nil
}

// statusAll returns the number of mappings the daemon reports.
func (d *daemon) statusAll(ctx context.Context) (int, error) {
	var st struct {
		Status   string `json:"status"`
		Mappings int    `json:"mappings"`
	}
	err := d.post(ctx, "/api/v2/status", url.Values{"mappingid": {"all"}}, &st)
	return st.Mappings, err
}

// mapping is the answer of mapping/add.
type mapping struct {
	ID        string `json:"id"`
	Port1     int    `json:"port1"`
	Port2     int    `json:"port2"`
	Passcode1 string `json:"passcode1"`
	Error     string `json:"errormessage"`
}

// addPublic adds a public mapping on transport ("" for the default).
func (d *daemon) addPublic(ctx context.Context, transport string, maxconn int) (mapping, error) {
	body := map[string]any{"type": "public", "maxconnections": maxconn, "heartbeatabsencethreshold": 200000}
	if transport != "" {
		body["transport"] = transport
	}
	b, _ := json.Marshal(body)
	var m mapping
	if err := d.post(ctx, "/api/v2/mapping/add", url.Values{"mapping": {string(b)}}, &m); err != nil {
		return m, err
	}
	if m.Error != "" || m.Port1 == 0 || m.Port2 == 0 {
		return m, fmt.Errorf("%w: mapping/add: %+v", errAPI, m)
	}
	return m, nil
}

// mappingActive reports whether the daemon sees an agent on the mapping.
func (d *daemon) mappingActive(ctx context.Context, id string) bool {
	var st map[string]any
	if err := d.post(ctx, "/api/v2/status", url.Values{"mappingid": {id}}, &st); err != nil {
		return false
	}
	for _, k := range []string{"private", "private1"} {
		if v, ok := st[k].(string); ok && strings.EqualFold(v, "active") {
			return true
		}
	}
	return false
}

// agentOptions configures one public agent started by the harness.
type agentOptions struct {
	Bin       string
	Transport string
	Pool      int
	PluginDir string
	Pprof     bool // serve Go's profiling endpoints (child.pprof)
}

// startAgent starts `iofog-connector agent public` for m toward local and
// waits until the daemon reports the mapping active (or 3 s pass).
func (d *daemon) startAgent(ctx context.Context, m mapping, local string, ao agentOptions) (*child, error) {
	args := []string{"agent", "public",
		"--connector", "127.0.0.1:" + strconv.Itoa(m.Port1),
		"--passcode", m.Passcode1,
		"--local", local,
	}
	if ao.Pool > 0 {
		args = append(args, "--pool", strconv.Itoa(ao.Pool))
	}
	if ao.Transport != "" {
		args = append(args, "--transport", ao.Transport)
	}
	if ca := d.agentCA(ao.Transport); ca != "" {
		args = append(args, "--ca", ca)
	} else {
		// Dev mode: the agent speaks TLS unless told not to.
		args = append(args, "--plaintext")
	}
	if ao.PluginDir != "" {
		args = append(args, "--plugin-dir", ao.PluginDir)
	}
	env, paddr, err := pprofEnv(ao.Pprof)
	if err != nil {
		return nil, err
	}
	c, err := startChildEnv(d.cl, d.log, "agent-"+ao.Transport, nil, env, ao.Bin, args...)
	if err != nil {
		return nil, err
	}
	c.pprof = paddr
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if !c.alive() {
			return nil, fmt.Errorf("connector-bench: agent exited: %v: %s", c.err, c.out.String())
		}
		if d.mappingActive(ctx, m.ID) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c, nil
}

// agentCA returns the certificate an agent of transport must trust: the
// server certificate in TLS mode; in dev mode the quic transport's own
// identity, which it keeps in the data dir (QUIC always encrypts).
func (d *daemon) agentCA(transport string) string {
	if d.caFile != "" {
		return d.caFile
	}
	if p := filepath.Join(d.dataDir, "quic-identity.crt"); transport == "quic" && fileExists(p) {
		return p
	}
	return ""
}

// publicAddr is where public clients reach mapping m.
func publicAddr(m mapping) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port2))
}
