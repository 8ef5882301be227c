package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func e2eCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (d *e2eDaemon) statusAll(t *testing.T) map[string]any {
	t.Helper()
	code, body, err := d.Post(e2eCtx(t, 20*time.Second), "/api/v2/status", url.Values{"mappingid": {"all"}})
	if err != nil || code != 200 || body["status"] != "running" || body["id"] != "all" {
		t.Fatalf("status all: %d %v %v", code, body, err)
	}
	return body
}

// TestAPIAddRemoveStatus: the Controller's calls over HTTP, against the
// real binary.
func TestAPIAddRemoveStatus(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	before := d.statusAll(t)
	if before["availablePorts"] != 10.0 || before["mappings"] != 0.0 || before["version"] == "" {
		t.Fatalf("fresh status: %v", before)
	}
	pub := d.AddMapping(t, e2ePublicBody)
	priv := d.AddMapping(t, e2ePrivateBody)
	if pub.Passcode2 != "" || priv.Passcode2 == "" || pub.Transport != "tcp" {
		t.Fatalf("passcodes: public %+v private %+v", pub, priv)
	}
	seen := map[int]bool{}
	for _, p := range []int{pub.Port1, pub.Port2, priv.Port1, priv.Port2} {
		if p < d.PortLo || p > d.PortHi || seen[p] {
			t.Fatalf("port %d outside %d-%d or handed out twice", p, d.PortLo, d.PortHi)
		}
		seen[p] = true
		e2eWaitPort(t, d.Addr(p), 5*time.Second)
	}
	after := d.statusAll(t)
	if after["availablePorts"] != 6.0 || after["mappings"] != 2.0 {
		t.Fatalf("status after two adds: %v", after)
	}
	ctx := e2eCtx(t, 20*time.Second)
	code, body, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {pub.ID}})
	if err != nil || code != 200 || body["public"] != "Active" || body["private"] != "Inactive" || body["transport"] != "tcp" {
		t.Fatalf("status of public mapping: %d %v %v", code, body, err)
	}
	code, body, err = d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {priv.ID}})
	if err != nil || code != 200 || body["private1"] != "Inactive" || body["private2"] != "Inactive" {
		t.Fatalf("status of private mapping: %d %v %v", code, body, err)
	}
	d.RemoveMapping(t, pub.ID)
	for _, p := range []int{pub.Port1, pub.Port2} {
		if !e2ePortClosed(d.Addr(p)) {
			t.Fatalf("port %d still open after remove", p)
		}
	}
	code, body, err = d.Post(ctx, "/api/v2/mapping/remove", url.Values{"mappingid": {pub.ID}})
	if err != nil || code != 404 || body["errormessage"] == nil {
		t.Fatalf("second remove: %d %v %v", code, body, err)
	}
	code, _, _ = d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {pub.ID}})
	if code != 404 {
		t.Fatalf("status of removed mapping: %d, want 404", code)
	}
	if got := d.statusAll(t); got["availablePorts"] != 8.0 || got["mappings"] != 1.0 {
		t.Fatalf("status after remove: %v", got)
	}
}

// TestAPIBadInputsChangeNothing: each bad request gets its status and an
// errormessage naming what is wrong; no port, mapping or stored byte
// changes.
func TestAPIBadInputsChangeNothing(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	keep := d.AddMapping(t, e2ePublicBody)
	storeBefore, err := os.ReadFile(filepath.Join(d.DataDir, "configs.journal"))
	if err != nil {
		t.Fatal(err)
	}
	before := d.statusAll(t)
	tests := []struct {
		name, route string
		form        url.Values
		want        int
		mention     string
	}{
		{"no mapping field", "/api/v2/mapping/add", url.Values{}, 400, "mapping"},
		{"mapping not JSON", "/api/v2/mapping/add", url.Values{"mapping": {"{type:public"}}, 400, "JSON"},
		{"unknown type", "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"secret","maxconnections":1,"heartbeatabsencethreshold":200000}`}}, 400, "type"},
		{"type wrong JSON type", "/api/v2/mapping/add", url.Values{"mapping": {`{"type":["public"]}`}}, 400, "type"},
		{"limit wrong JSON type", "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"public","maxconnections":"60","heartbeatabsencethreshold":200000}`}}, 400, "maxconnections"},
		{"negative threshold", "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":-1}`}}, 400, "heartbeatabsencethreshold"},
		{"zero limit", "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":0,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":200000}`}}, 400, "maxconnectionsport2"},
		{"missing threshold", "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"public","maxconnections":60}`}}, 400, "heartbeatabsencethreshold"},
		{"unknown transport", "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"pigeon"}`}}, 400, "pigeon"},
		{"duplicate id", "/api/v2/mapping/add", url.Values{"mapping": {`{"id":"` + keep.ID + `","type":"public","maxconnections":60,"heartbeatabsencethreshold":200000}`}}, 409, keep.ID},
		{"remove without id", "/api/v2/mapping/remove", url.Values{}, 400, "mappingid"},
		{"remove unknown", "/api/v2/mapping/remove", url.Values{"mappingid": {"4a1f0d1c-0000-4000-8000-000000000000"}}, 404, "4a1f0d1c"},
		{"status without id", "/api/v2/status", url.Values{}, 400, "mappingid"},
		{"status unknown", "/api/v2/status", url.Values{"mappingid": {"nope"}}, 404, "nope"},
		{"unknown command", "/api/v2/commandline", url.Values{"command": {"reboot"}}, 400, "reboot"},
		{"body too large", "/api/v2/mapping/add", url.Values{"mapping": {strings.Repeat("x", 200<<10)}}, 413, "bytes"},
		{"unknown route", "/api/v3/mapping/add", url.Values{}, 404, "endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, err := d.Post(e2eCtx(t, 20*time.Second), tt.route, tt.form)
			if err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprint(body["errormessage"])
			if code != tt.want || body["status"] != "error" || !strings.Contains(msg, tt.mention) {
				t.Fatalf("got %d %v; want %d with an errormessage mentioning %q", code, body, tt.want, tt.mention)
			}
			if _, ok := body["timestamp"].(float64); !ok {
				t.Fatalf("no timestamp: %v", body)
			}
		})
	}
	// A GET is not part of the API either.
	resp, err := d.Client.Get(d.API + "/api/v2/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("GET answered %d", resp.StatusCode)
	}
	after := d.statusAll(t)
	if after["availablePorts"] != before["availablePorts"] || after["mappings"] != before["mappings"] {
		t.Fatalf("bad requests changed state: before %v after %v", before, after)
	}
	storeAfter, _ := os.ReadFile(filepath.Join(d.DataDir, "configs.journal"))
	if string(storeAfter) != string(storeBefore) {
		t.Fatalf("bad requests changed the store:\n%s\n---\n%s", storeBefore, storeAfter)
	}
}

// TestAPIPortExhaustion: 507 when fewer than two ports are free; a remove
// gives them back.
func TestAPIPortExhaustion(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 5})
	a := d.AddMapping(t, e2ePublicBody)
	d.AddMapping(t, e2ePrivateBody)
	m, code, err := d.TryAddMapping(e2eCtx(t, 20*time.Second), e2ePublicBody)
	if err != nil || code != 507 || m.ID != "" {
		t.Fatalf("add with one free port: %d %+v %v; want 507", code, m, err)
	}
	_, body, _ := d.Post(e2eCtx(t, 20*time.Second), "/api/v2/mapping/add", url.Values{"mapping": {e2ePublicBody}})
	if !strings.Contains(fmt.Sprint(body["errormessage"]), "No enough available ports") {
		t.Fatalf("507 message: %v", body)
	}
	if st := d.statusAll(t); st["availablePorts"] != 1.0 || st["mappings"] != 2.0 {
		t.Fatalf("status after refused add: %v", st)
	}
	d.RemoveMapping(t, a.ID)
	d.AddMapping(t, e2ePublicBody)
}

// TestAPIOverHTTPS: with dev=false the API is HTTPS only, with the
// certificate from the settings file's directory, and the public and agent
// ports speak TLS.
func TestAPIOverHTTPS(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10, TLS: true})
	m := d.AddMapping(t, e2ePublicBody)
	if st := d.statusAll(t); st["mappings"] != 1.0 {
		t.Fatalf("status over HTTPS: %v", st)
	}
	// Plain HTTP is refused.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Post("http://"+d.APIAddr+"/api/v2/status", "application/x-www-form-urlencoded", strings.NewReader("mappingid=all")); err == nil {
		ok := resp.StatusCode == 200
		resp.Body.Close()
		if ok {
			t.Fatal("plain HTTP answered 200 on the HTTPS API")
		}
	}
	// Public and agent ports complete a TLS handshake with the server
	// certificate the Controller hands to agents.
	for _, p := range []int{m.Port1, m.Port2} {
		c, err := tls.DialWithDialer(&netDialer, "tcp", d.Addr(p), &tls.Config{RootCAs: d.CertPool})
		if err != nil {
			t.Fatalf("TLS handshake on port %d: %v", p, err)
		}
		c.Close()
	}
	d.RemoveMapping(t, m.ID)
}

// TestAPICommandline: version, help, status; stop from the local host
// stops the daemon cleanly.
func TestAPICommandline(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	d.AddMapping(t, e2ePublicBody)
	ctx := e2eCtx(t, 20*time.Second)
	for cmd, want := range map[string]string{"version": version, "help": "stop", "status": "Mappings:"} {
		code, body, err := d.Post(ctx, "/api/v2/commandline", url.Values{"command": {cmd}})
		if err != nil || code != 200 || !strings.Contains(fmt.Sprint(body["response"]), want) {
			t.Fatalf("command %s: %d %v %v; want a response containing %q", cmd, code, body, err, want)
		}
	}
	code, body, err := d.Post(ctx, "/api/v2/commandline", url.Values{"command": {"stop"}})
	if err != nil || code != 200 || body["response"] != "stopping" {
		t.Fatalf("stop: %d %v %v", code, body, err)
	}
	if err := d.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("daemon exit after commandline stop: %v", err)
	}
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}
