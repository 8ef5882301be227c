package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestProxyProtocolCLIE2E adds a public mapping with --proxy-protocol
// through the CLI of the real binary and checks that the daemon stored it
// (mapping show, the REST status) and that a private one is refused.
func TestProxyProtocolCLIE2E(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 6})
	var added struct {
		ID            string `json:"id"`
		ProxyProtocol string `json:"proxyProtocol"`
	}
	out := cliMust(t, d, "mapping", "add", "--public", "--proxy-protocol", "v2", "--json")
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.ID == "" || added.ProxyProtocol != "v2" {
		t.Fatalf("mapping add --json = %+v, %v:\n%s", added, err, out)
	}
	if show := cliMust(t, d, "mapping", "show", added.ID); !strings.Contains(show, "proxy protocol:") || !strings.Contains(show, "v2") {
		t.Fatalf("mapping show lacks the proxy protocol:\n%s", show)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, body, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {added.ID}})
	if err != nil || code != 200 || body["proxyprotocol"] != "v2" {
		t.Fatalf("API status: %d %v %v; want proxyprotocol v2", code, body, err)
	}
	out, rc := cliRun(t, d, "mapping", "add", "--private", "--proxy-protocol", "v1")
	if rc == 0 || !strings.Contains(out, "--proxy-protocol is for --public") {
		t.Fatalf("private with --proxy-protocol: rc %d:\n%s", rc, out)
	}
}
