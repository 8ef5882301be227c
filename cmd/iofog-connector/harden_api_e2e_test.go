package main

// End-to-end tests of the API lock and contract (issue 9, items 3, 6 and
// 9) and of the per-mapping idle timeout, against the real binary.
// Helpers here carry the hapi prefix.

import (
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
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hapiToken is the API token of these tests.
const hapiToken = "hapi-e2e-token-4f0c2b7d9a1e"

// hapiOptions describe a daemon to start with hapiStart.
type hapiOptions struct {
	e2eOptions
	// Token is sent by d.Client on every request.
	Token string
	// ClientCert is presented by d.Client (TLS only).
	ClientCert *tls.Certificate
	// Args are extra flags of `start`.
	Args []string
	// Before runs after the settings are chosen and before the start
	// (to write files into d.Dir or d.DataDir).
	Before func(d *e2eDaemon)
}

// hapiBearer adds the bearer token to every request.
type hapiBearer struct {
	token string
	base  http.RoundTripper
}

func (b hapiBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// hapiStart is e2eStartDaemon for a locked API: d.Client carries the
// token and client certificate, so that the start-up probe and the shared
// helpers (Post, AddMapping...) are authorised.
func hapiStart(t *testing.T, opts hapiOptions) *e2eDaemon {
	t.Helper()
	if opts.Ports == 0 {
		opts.Ports = 10
	}
	dir := t.TempDir()
	d := &e2eDaemon{t: t, Bin: e2eBinary(t), Dir: dir, DataDir: filepath.Join(dir, "data"), Logs: &e2eBuffer{}, env: opts.Env}
	d.PortLo, d.PortHi = e2ePortRange(t, opts.Ports)
	d.APIAddr = "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	settings := map[string]any{
		"ports": []string{fmt.Sprintf("%d-%d", d.PortLo, d.PortHi)}, "exclude": []string{}, "broker": 12345,
		"address": "127.0.0.1", "dev": !opts.TLS, "api-address": d.APIAddr, "bind": "127.0.0.1",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	d.API = "http://" + d.APIAddr
	tr := &http.Transport{}
	if opts.TLS {
		d.CertPEM, d.CertPool = e2eWriteCert(t, dir)
		d.API = "https://" + d.APIAddr
		tr.TLSClientConfig = &tls.Config{RootCAs: d.CertPool}
		if opts.ClientCert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*opts.ClientCert}
		}
	}
	var rt http.RoundTripper = tr
	if opts.Token != "" {
		rt = hapiBearer{opts.Token, tr}
	}
	d.Client = &http.Client{Timeout: 20 * time.Second, Transport: rt}
	b, _ := json.MarshalIndent(settings, "", "  ")
	d.ConfigPath = filepath.Join(dir, "iofog-connector.conf")
	if err := os.WriteFile(d.ConfigPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if opts.Before != nil {
		opts.Before(d)
	}
	d.startRaw(t, append([]string{"start", "--config", d.ConfigPath, "--data-dir", d.DataDir}, opts.Args...)...)
	d.cleanup(t)
	return d
}

// hapiAnswer is one raw API answer.
type hapiAnswer struct {
	code int
	hdr  http.Header
	body map[string]any
	raw  string
}

// hapiDo sends one request with client (redirects are not followed) and
// requires a JSON object body; an error status must carry errormessage.
func hapiDo(t *testing.T, client *http.Client, method, target, form string, hdr map[string]string) hapiAnswer {
	t.Helper()
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := hapiAnswer{code: resp.StatusCode, hdr: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("%s %s answered %d with a body that is not JSON: %q", method, target, resp.StatusCode, b)
	}
	if resp.StatusCode >= 400 {
		if msg, _ := a.body["errormessage"].(string); msg == "" {
			t.Fatalf("%s %s answered %d without errormessage: %s", method, target, resp.StatusCode, b)
		}
	}
	return a
}

func hapiForm(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// hapiMappings returns the number of mappings from status all.
func hapiMappings(t *testing.T, d *e2eDaemon) float64 {
	t.Helper()
	return d.statusAll(t)["mappings"].(float64)
}

// hapiRefusesWithoutToken checks that every route (and the unknown and
// unclean ones) answers 401 JSON with a Bearer challenge to client.
func hapiRefusesWithoutToken(t *testing.T, d *e2eDaemon, client *http.Client, auth string) {
	t.Helper()
	hdr := map[string]string{}
	if auth != "" {
		hdr["Authorization"] = auth
	}
	for _, rq := range []struct{ method, route, form string }{
		{"POST", "/api/v2/mapping/add", hapiForm("mapping", e2ePublicBody)},
		{"POST", "/api/v2/mapping/remove", hapiForm("mappingid", "4a1f0d1c-0000-4000-8000-000000000000")},
		{"POST", "/api/v2/status", hapiForm("mappingid", "all")},
		{"POST", "/api/v2/commandline", hapiForm("command", "version")},
		{"POST", "/api/v2/commandline", hapiForm("command", "stop")},
		{"GET", "/api/v2/status", ""},
		{"POST", "/api/v3/anything", ""},
		{"POST", "/api//v2/status", hapiForm("mappingid", "all")},
	} {
		a := hapiDo(t, client, rq.method, d.API+rq.route, rq.form, hdr)
		if a.code != 401 || !strings.HasPrefix(a.hdr.Get("WWW-Authenticate"), "Bearer") ||
			!strings.Contains(a.body["errormessage"].(string), "authentication required") {
			t.Fatalf("%s %s with Authorization %q: %d %q %s; want 401 JSON with a Bearer challenge", rq.method, rq.route, auth, a.code, a.hdr.Get("WWW-Authenticate"), a.raw)
		}
	}
}

// TestHardenAPITokenEveryRoute: with api-token set, every route refuses a
// request without the token or with a wrong one (401 JSON), changes
// nothing, and works with the token, stop included.
func TestHardenAPITokenEveryRoute(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	d := hapiStart(t, hapiOptions{e2eOptions: e2eOptions{Settings: map[string]any{"api-token": hapiToken}}, Token: hapiToken})
	plain := netClient()
	hapiRefusesWithoutToken(t, d, plain, "")
	hapiRefusesWithoutToken(t, d, plain, "Bearer "+hapiToken+"x")
	hapiRefusesWithoutToken(t, d, plain, "Bearer "+hapiToken[:len(hapiToken)-1])
	hapiRefusesWithoutToken(t, d, plain, "Basic "+hapiToken)
	if !d.Running() || hapiMappings(t, d) != 0 {
		t.Fatal("refused requests changed the daemon")
	}
	if !strings.Contains(d.Logs.String(), "api_auth=token") {
		t.Fatal("start-up log does not say the API is locked by a token")
	}
	m := d.AddMapping(t, e2ePublicBody)
	code, body, err := d.Post(e2eCtx(t, 20*time.Second), "/api/v2/status", url.Values{"mappingid": {m.ID}})
	if err != nil || code != 200 || body["public"] != "Active" {
		t.Fatalf("status with token: %d %v %v", code, body, err)
	}
	d.RemoveMapping(t, m.ID)
	code, body, err = d.Post(e2eCtx(t, 20*time.Second), "/api/v2/commandline", url.Values{"command": {"stop"}})
	if err != nil || code != 200 || body["response"] != "stopping" {
		t.Fatalf("stop with token: %d %v %v", code, body, err)
	}
	if err := d.Wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit after stop: %v", err)
	}
}

// TestHardenAPITokenFileAndEnv: the token from api-token-file (a flag;
// a group-readable file starts with a warning) and from
// IOFOG_CONNECTOR_API_TOKEN; bad token settings stop start-up.
func TestHardenAPITokenFileAndEnv(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	tokDir := t.TempDir()
	tokFile := filepath.Join(tokDir, "token")
	if err := os.WriteFile(tokFile, []byte(hapiToken+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tokFile, 0o640)
	d := hapiStart(t, hapiOptions{Token: hapiToken, Args: []string{"--api-token-file", tokFile}})
	hapiRefusesWithoutToken(t, d, netClient(), "")
	if d.statusAll(t)["status"] != "running" {
		t.Fatal("token from file not accepted")
	}
	if !strings.Contains(d.Logs.String(), "readable by group or others") {
		t.Fatal("no warning for a group-readable token file")
	}
	d.Stop(t)

	e := hapiStart(t, hapiOptions{e2eOptions: e2eOptions{Env: []string{"IOFOG_CONNECTOR_API_TOKEN=" + hapiToken}}, Token: hapiToken})
	hapiRefusesWithoutToken(t, e, netClient(), "Bearer wrong-token-0123456789")
	e.AddMapping(t, e2ePublicBody)
	e.Stop(t)

	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(tokDir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("dev.conf", fmt.Sprintf(`{"ports":["%d-%d"],"dev":true,"api-address":"127.0.0.1:%d","bind":"127.0.0.1"}`, d.PortLo, d.PortHi, e2eFreePort(t)), 0o600)
	withToken := write("tok.conf", fmt.Sprintf(`{"ports":["%d-%d"],"dev":true,"api-token":"%s","api-address":"127.0.0.1:%d"}`, d.PortLo, d.PortHi, hapiToken, e2eFreePort(t)), 0o600)
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"both", nil, []string{"--config", withToken, "--api-token-file", tokFile}, "api-token and api-token-file: both are set"},
		{"empty file", nil, []string{"--config", conf, "--api-token-file", write("empty", "\n", 0o600)}, "is empty"},
		{"group-writable file", nil, []string{"--config", conf, "--api-token-file", write("gw", hapiToken, 0o660)}, "writable by group or others"},
		{"missing file", nil, []string{"--config", conf, "--api-token-file", filepath.Join(tokDir, "nope")}, "api-token-file: open"},
		{"short token", []string{"IOFOG_CONNECTOR_API_TOKEN=short"}, []string{"--config", conf}, "api-token: the token has 5 characters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, code := e2eRun(t, tt.env, append([]string{"start", "--data-dir", filepath.Join(tokDir, "data-"+tt.name)}, tt.args...)...)
			if code == 0 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant non-zero and %q", code, out, tt.want)
			}
			if strings.Contains(out, hapiToken) {
				t.Fatalf("the token is in the output:\n%s", out)
			}
		})
	}
}

// hapiCA is a test CA that signs client certificates.
type hapiCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func hapiNewCA(t *testing.T, name string) *hapiCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &hapiCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// clientCert issues a client certificate signed by ca.
func (ca *hapiCA) clientCert(t *testing.T, name string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestHardenAPIMutualTLS: with api-client-ca the HTTPS API refuses
// clients without a certificate or with one from another CA, and serves a
// client whose certificate the CA signed; agent and public ports do not
// ask for client certificates. With dev it refuses to start.
func TestHardenAPIMutualTLS(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	ca := hapiNewCA(t, "iofog-controller-ca")
	good := ca.clientCert(t, "controller")
	rogue := hapiNewCA(t, "rogue-ca").clientCert(t, "controller")
	caFile := filepath.Join(t.TempDir(), "api-ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	d := hapiStart(t, hapiOptions{e2eOptions: e2eOptions{TLS: true, Settings: map[string]any{"api-client-ca": caFile}}, ClientCert: good})
	if !strings.Contains(d.Logs.String(), "api_auth=client-cert") {
		t.Fatal("start-up log does not name the client-certificate lock")
	}
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "certificate of another CA": {*rogue}} {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.CertPool, Certificates: certs}}}
		resp, err := c.PostForm(d.API+"/api/v2/status", url.Values{"mappingid": {"all"}})
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: answered %d, want the TLS handshake refused", name, resp.StatusCode)
		}
	}
	m := d.AddMapping(t, e2ePublicBody)
	if st := d.statusAll(t); st["mappings"] != 1.0 {
		t.Fatalf("status with a client certificate: %v", st)
	}
	for _, p := range []int{m.Port1, m.Port2} {
		c, err := tls.DialWithDialer(&netDialer, "tcp", d.Addr(p), &tls.Config{RootCAs: d.CertPool})
		if err != nil {
			t.Fatalf("port %d asks for a client certificate: %v", p, err)
		}
		c.Close()
	}
	devConf := filepath.Join(t.TempDir(), "dev.conf")
	os.WriteFile(devConf, []byte(fmt.Sprintf(`{"ports":["%d-%d"],"dev":true,"api-address":"127.0.0.1:%d"}`, d.PortLo, d.PortHi, e2eFreePort(t))), 0o600)
	out, code := e2eRun(t, nil, "start", "--config", devConf, "--data-dir", filepath.Join(t.TempDir(), "data"), "--api-client-ca", caFile)
	if code == 0 || !strings.Contains(out, "api-client-ca: client certificates need the HTTPS API") {
		t.Fatalf("api-client-ca with dev: exit %d\n%s", code, out)
	}
}

// TestHardenAPICrossOriginStop: a browser page on another origin cannot
// stop the daemon or add a mapping (403 JSON); the Controller's requests,
// which carry no Origin or Sec-Fetch-Site, still can.
func TestHardenAPICrossOriginStop(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "http://evil.example"},
		{"Origin": "http://localhost:9"},
	} {
		a := hapiDo(t, d.Client, "POST", d.API+"/api/v2/commandline", hapiForm("command", "stop"), hdr)
		if a.code != 403 || !strings.Contains(a.body["errormessage"].(string), "cross-origin") {
			t.Fatalf("stop with %v: %d %s; want 403", hdr, a.code, a.raw)
		}
		a = hapiDo(t, d.Client, "POST", d.API+"/api/v2/mapping/add", hapiForm("mapping", e2ePublicBody), hdr)
		if a.code != 403 {
			t.Fatalf("add with %v: %d %s; want 403", hdr, a.code, a.raw)
		}
	}
	time.Sleep(500 * time.Millisecond) // a stop would have begun by now
	if !d.Running() || hapiMappings(t, d) != 0 {
		t.Fatal("a cross-origin request changed the daemon")
	}
	a := hapiDo(t, d.Client, "POST", d.API+"/api/v2/status", hapiForm("mappingid", "all"), map[string]string{"Sec-Fetch-Site": "same-origin"})
	if a.code != 200 {
		t.Fatalf("same-origin status: %d %s", a.code, a.raw)
	}
	code, body, err := d.Post(e2eCtx(t, 20*time.Second), "/api/v2/commandline", url.Values{"command": {"stop"}})
	if err != nil || code != 200 || body["response"] != "stopping" {
		t.Fatalf("Controller-style stop: %d %v %v", code, body, err)
	}
	if err := d.Wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit after stop: %v", err)
	}
}

// TestHardenAPIContractNits: item 9 through the real binary: reserved and
// spoofable ids, duplicate keys, unclean paths, wrong methods and unknown
// routes all get a JSON error; nothing is stored. A loopback API logs no
// warning about being unprotected.
func TestHardenAPIContractNits(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	const base = `"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000`
	for _, tt := range []struct {
		name, mapping, mention string
	}{
		{"id all", `{` + base + `,"id":"all"}`, "reserved"},
		{"id zero width", `{` + base + `,"id":"cam` + "\u200b" + `1"}`, "U+200B"},
		{"id bidi override", `{` + base + `,"id":"` + "\u202e" + `gpj.exe"}`, "U+202E"},
		{"id escaped bidi isolate", `{` + base + `,"id":"a\u2067b"}`, "U+2067"},
		{"id control", `{` + base + `,"id":"a\u0000b"}`, "U+0000"},
		{"duplicate key", `{` + base + `,"type":"private"}`, `"type"`},
		{"duplicate escaped key", `{` + base + `,"maxconnection\u0073":1}`, `"maxconnections"`},
	} {
		a := hapiDo(t, d.Client, "POST", d.API+"/api/v2/mapping/add", hapiForm("mapping", tt.mapping), nil)
		if a.code != 400 || !strings.Contains(a.body["errormessage"].(string), tt.mention) {
			t.Fatalf("%s: %d %s; want 400 mentioning %s", tt.name, a.code, a.raw, tt.mention)
		}
	}
	a := hapiDo(t, d.Client, "POST", d.API+"/api/v2/mapping/add", hapiForm("mapping", `{`+base+`}`, "mapping", `{`+base+`}`), nil)
	if a.code != 400 || !strings.Contains(a.body["errormessage"].(string), "given 2 times") {
		t.Fatalf("mapping field twice: %d %s", a.code, a.raw)
	}
	for _, p := range []string{"/api//v2/status", "//api/v2/status", "/api/v2/status/", "/api/v2/./status", "/api/v2/x/../status"} {
		a := hapiDo(t, d.Client, "POST", d.API+p, hapiForm("mappingid", "all"), nil)
		if a.code != 404 || a.hdr.Get("Location") != "" {
			t.Fatalf("%s: %d (Location %q) %s; want a JSON 404, no redirect", p, a.code, a.hdr.Get("Location"), a.raw)
		}
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		a := hapiDo(t, d.Client, m, d.API+"/api/v2/status", "", nil)
		if a.code != 405 || a.hdr.Get("Allow") != "POST" {
			t.Fatalf("%s /api/v2/status: %d Allow %q %s; want 405 with Allow: POST", m, a.code, a.hdr.Get("Allow"), a.raw)
		}
	}
	if a := hapiDo(t, d.Client, "POST", d.API+"/api/v2/nothing", "", nil); a.code != 404 {
		t.Fatalf("unknown route: %d %s", a.code, a.raw)
	}
	if hapiMappings(t, d) != 0 {
		t.Fatal("a refused add created a mapping")
	}
	// A legitimate client-chosen id still works.
	if m, code, err := d.TryAddMapping(e2eCtx(t, 20*time.Second), `{`+base+`,"id":"edge-camera-1"}`); err != nil || code != 200 || m.ID != "edge-camera-1" {
		t.Fatalf("add with a plain id: %d %+v %v", code, m, err)
	}
	logs := d.Logs.String()
	if strings.Contains(logs, "listens beyond loopback") || !strings.Contains(logs, "api_auth=none") {
		t.Fatalf("loopback API: unexpected start-up logs:\n%s", logs)
	}
}

// hapiLegacyLink dials addr as a legacy agent: the passcode in one write,
// then exactly AUTHORIZED.
func hapiLegacyLink(t *testing.T, addr, passcode string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(passcode)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "AUTHORIZED" {
		t.Fatalf("link not authorized (read %q): %v", got, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// TestHardenAPIHeartbeatFloor: thresholds below 1,000 ms are refused
// naming the field, 1,000 is accepted (with a warning about legacy
// agents); a mapping stored with 1 ms by an older version is reopened at
// 1,000 ms with a warning, keeps a beating link, and stays stored as it
// was.
func TestHardenAPIHeartbeatFloor(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	const legacyID = "4a1f0d1c-1111-4000-8000-00000000abcd"
	var stored []byte
	d := hapiStart(t, hapiOptions{Before: func(d *e2eDaemon) {
		if err := os.MkdirAll(d.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		stored = []byte(fmt.Sprintf(`{"mappings":[{"id":%q,"port1":%d,"port2":%d,"maxconnectionsport1":2,"maxconnectionsport2":0,`+
			`"passcodeport1":"legacy-passcode-1","passcodeport2":"","heartbeatabsencethresholdport1":1,"heartbeatabsencethresholdport2":0}]}`,
			legacyID, d.PortLo, d.PortLo+1))
		if err := os.WriteFile(filepath.Join(d.DataDir, "configs.json"), stored, 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	for _, tt := range []struct{ body, field string }{
		{`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":999}`, "heartbeatabsencethreshold 999 ms is below the minimum of 1000 ms"},
		{`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":1}`, "heartbeatabsencethreshold 1 ms"},
		{`{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":999,"heartbeatabsencethresholdport2":200000}`, "heartbeatabsencethresholdport1 999 ms"},
		{`{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":999}`, "heartbeatabsencethresholdport2 999 ms"},
	} {
		a := hapiDo(t, d.Client, "POST", d.API+"/api/v2/mapping/add", hapiForm("mapping", tt.body), nil)
		if a.code != 400 || !strings.Contains(a.body["errormessage"].(string), tt.field) {
			t.Fatalf("%s: %d %s; want 400 naming %q", tt.body, a.code, a.raw, tt.field)
		}
	}
	if hapiMappings(t, d) != 1 {
		t.Fatal("a refused add created a mapping")
	}
	d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":1000}`)
	d.AddMapping(t, `{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":1000,"heartbeatabsencethresholdport2":1000}`)
	logs := d.Logs.String()
	for _, want := range []string{"shorter than the legacy agents' beat", "stored mapping setting out of range", "stored_ms=1 ", "used_ms=1000"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %q:\n%s", want, logs)
		}
	}
	// The restored mapping runs at 1,000 ms: a link beating every 250 ms
	// stays linked (at 1 ms it would be dropped right after AUTHORIZED).
	link := hapiLegacyLink(t, d.Addr(d.PortLo), "legacy-passcode-1")
	defer link.Close()
	for range 8 {
		time.Sleep(250 * time.Millisecond)
		if _, err := link.Write([]byte("BEAT")); err != nil {
			t.Fatalf("link dropped while beating: %v", err)
		}
	}
	code, body, err := d.Post(e2eCtx(t, 20*time.Second), "/api/v2/status", url.Values{"mappingid": {legacyID}})
	if err != nil || code != 200 || body["links"] != 1.0 || body["error"] != nil {
		t.Fatalf("restored mapping: %d %v %v; want one live link", code, body, err)
	}
	d.Stop(t)
	var file struct{ Mappings []map[string]any }
	b, err := os.ReadFile(filepath.Join(d.DataDir, "configs.json"))
	if err != nil || json.Unmarshal(b, &file) != nil {
		t.Fatalf("configs.json: %v\n%s", err, b)
	}
	for _, m := range file.Mappings {
		if m["id"] == legacyID && m["heartbeatabsencethresholdport1"] != 1.0 {
			t.Fatalf("the stored threshold was changed:\n%s", b)
		}
	}
}

// hapiAgentArgs is the command line of our agent in dev mode (plain TCP)
// for one public mapping: a dev-mode daemon needs the explicit --plaintext.
func hapiAgentArgs(port int, passcode, local string) []string {
	return e2eAgentArgs("public", "127.0.0.1:"+strconv.Itoa(port), passcode,
		"--plaintext", "--local", local, "--pool", "4", "--log-level", "debug")
}

// hapiEchoOnce writes msg on c and reads it back.
func hapiEchoOnce(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// TestHardenAPIIdleTimeout: a public mapping with idletimeout 1500 ms,
// through the real daemon and our agent: an idle public client is closed
// after about 1.5 s, one that keeps sending is not; status shows the
// value, a restart restores it, and a mapping without it is stored in the
// legacy format.
func TestHardenAPIIdleTimeout(t *testing.T) {
	e2eWatchdog(t, 4*time.Minute)
	const idle = 1500 * time.Millisecond
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	for _, bad := range []string{`-1`, `1.5`, `"1500"`, `500`, `604800001`} {
		a := hapiDo(t, d.Client, "POST", d.API+"/api/v2/mapping/add",
			hapiForm("mapping", `{"type":"public","maxconnections":4,"heartbeatabsencethreshold":200000,"idletimeout":`+bad+`}`), nil)
		if a.code != 400 || !strings.Contains(a.body["errormessage"].(string), "idletimeout") {
			t.Fatalf("idletimeout %s: %d %s; want 400 naming idletimeout", bad, a.code, a.raw)
		}
	}
	m := d.AddMapping(t, `{"type":"public","maxconnections":4,"heartbeatabsencethreshold":200000,"idletimeout":1500}`)
	plain := d.AddMapping(t, e2ePublicBody)
	echo := e2eEcho(t)
	agent := e2eStart(t, d.Bin, hapiAgentArgs(m.Port1, m.Passcode1, echo)...)
	public := d.Addr(m.Port2)

	// Wait for the first round trip.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", public, 5*time.Second)
		if err == nil {
			err = hapiEchoOnce(c, "ready?")
			c.Close()
		}
		if err == nil {
			break
		}
		select {
		case <-agent.done:
			t.Fatal("agent exited")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no round trip through the agent: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	idleC, err := net.DialTimeout("tcp", public, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idleC.Close()
	busyC, err := net.DialTimeout("tcp", public, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer busyC.Close()
	if err := hapiEchoOnce(idleC, "idle-client"); err != nil {
		t.Fatal(err)
	}
	lastByte := time.Now()
	var wg sync.WaitGroup
	var busyErr error
	wg.Add(1)
	go func() { // 3 idle timeouts of traffic, a byte every 200 ms
		defer wg.Done()
		for i := range 23 {
			if busyErr = hapiEchoOnce(busyC, strconv.Itoa(i%10)); busyErr != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	idleC.SetReadDeadline(time.Now().Add(idle + 15*time.Second))
	_, rerr := idleC.Read(make([]byte, 1))
	closedAfter := time.Since(lastByte)
	var ne net.Error
	if errors.As(rerr, &ne) && ne.Timeout() {
		t.Fatalf("idle client still open %s after its last byte", closedAfter)
	}
	if closedAfter < idle-300*time.Millisecond {
		t.Fatalf("idle client closed %s after its last byte; the idle timeout is %s", closedAfter, idle)
	}
	wg.Wait()
	if busyErr != nil {
		t.Fatalf("a client that kept sending was cut: %v", busyErr)
	}
	t.Logf("idle client closed %s after its last byte (idletimeout %s)", closedAfter.Round(time.Millisecond), idle)

	code, body, err := d.Post(e2eCtx(t, 20*time.Second), "/api/v2/status", url.Values{"mappingid": {m.ID}})
	if err != nil || code != 200 || body["idletimeout"] != 1500.0 {
		t.Fatalf("status: %d %v %v; want idletimeout 1500", code, body, err)
	}
	d.Stop(t)
	d.Start(t)
	code, body, err = d.Post(e2eCtx(t, 20*time.Second), "/api/v2/status", url.Values{"mappingid": {m.ID}})
	if err != nil || code != 200 || body["idletimeout"] != 1500.0 {
		t.Fatalf("status after restart: %d %v %v; want idletimeout 1500", code, body, err)
	}
	d.Stop(t)
	b, err := os.ReadFile(filepath.Join(d.DataDir, "configs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Mappings []map[string]any }
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	for _, sm := range file.Mappings {
		v, has := sm["idletimeout"]
		if sm["id"] == m.ID && v != 1500.0 || sm["id"] == plain.ID && has {
			t.Fatalf("configs.json: %s", b)
		}
	}
}
