package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/transports/quic"
	"github.com/iofog/iofog-connector/transports/tcp"
	"github.com/iofog/iofog-connector/transports/yamux"
)

// TestSettingsBuiltinTransports: transports.<name> of the settings file
// and the environment decode into the real tcp, yamux and quic Configs,
// which the registry builds the transports with; an unknown key and a
// value a transport refuses stop the load with the key and its source.
func TestSettingsBuiltinTransports(t *testing.T) {
	pin := strings.Repeat("ab", 32)
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_QUIC_PIN_SHA256", pin)
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_TCP_DIAL_TIMEOUT", "3s")
	s, err := settingsFrom(t, `{"ports":["7000-7010"],"dev":true,"transports":{
		"tcp":{"handshake-timeout":"4s","bind-timeout":2000,"sweep-interval":"100ms","dial-timeout":"9s"},
		"yamux":{"max-stream-window-size":1048576,"accept-backlog":128,"handshake-timeout":"6s","drain-timeout":"1m"},
		"quic":{"identity-hosts":["connector.example"],"max-streams":500,"max-stream-receive-window":4194304,
		        "max-connection-receive-window":8388608,"handshake-timeout":"7s"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	tc := tcp.Config{HandshakeTimeout: 4 * time.Second, BindTimeout: 2 * time.Second, SweepInterval: 100 * time.Millisecond, DialTimeout: 3 * time.Second}
	yc := yamux.Config{MaxStreamWindowSize: 1 << 20, AcceptBacklog: 128, HandshakeTimeout: 6 * time.Second, DrainTimeout: time.Minute}
	if got := s.Transports.Configs["tcp"]; got != tc {
		t.Errorf("tcp = %+v, want %+v", got, tc)
	}
	if got := s.Transports.Configs["yamux"]; got != yc {
		t.Errorf("yamux = %+v, want %+v", got, yc)
	}
	q := s.Transports.Configs["quic"].(quic.Config)
	if q.PinSHA256 != pin || q.MaxStreams != 500 || q.MaxStreamReceiveWindow != 4<<20 || q.MaxConnectionReceiveWindow != 8<<20 ||
		q.HandshakeTimeout != 7*time.Second || len(q.IdentityHosts) != 1 || q.IdentityHosts[0] != "connector.example" || q.IdentityDir != "" {
		t.Errorf("quic = %+v", q)
	}
	ts, err := builtinTransports(transportOptions{DataDir: t.TempDir(), Settings: s.Transports})
	if err != nil || len(ts) != 3 {
		t.Fatalf("builtinTransports: %v %v", ts, err)
	}
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_QUIC_PIN_SHA256", "") // empty: unset
	for _, tt := range []struct{ body, want string }{
		{`"tcp":{"handshake":"4s"}`, "transports.tcp.handshake: unknown key (settings file "},
		{`"quic":{"max-streams":-1}`, "transports.quic.max-streams: quic: sdk: invalid config: MaxStreams -1 is negative (settings file "},
		{`"yamux":{"max-stream-window-size":1024}`, "transports.yamux.max-stream-window-size: yamux: sdk: invalid config: MaxStreamWindowSize 1024 is below"},
		{`"quic":{"pin-sha256":"abc"}`, "transports.quic.pin-sha256: quic: sdk: invalid config: PinSHA256 is not 64 hex digits (settings file "},
	} {
		if _, err := settingsFrom(t, `{"ports":["7000-7010"],"transports":{`+tt.body+`}}`); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.body, err, tt.want)
		}
	}
}

// TestSettingsPluginChecksums: with plugins.checksums set, a plugin
// without a sum is refused before it runs; sums match file names without
// case; subtrees naming a plugin or no transport are refused.
func TestSettingsPluginChecksums(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "iofog-transport-Fast")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("x"))
	cfg, paths, err := pluginConfig(dir, map[string][]byte{"iofog-transport-fast": sum[:]}, nil)
	if err != nil || len(paths) != 1 || string(cfg.Checksums["iofog-transport-Fast"]) != string(sum[:]) {
		t.Fatalf("pinned plugin: %v %v %v", cfg.Checksums, paths, err)
	}
	if _, _, err := pluginConfig(dir, map[string][]byte{"iofog-transport-other": sum[:]}, nil); err == nil ||
		!strings.Contains(err.Error(), "plugins.checksums: "+p+" has no sum") {
		t.Fatalf("unpinned plugin: %v", err)
	}
	if cfg, _, err := pluginConfig(dir, nil, nil); err != nil || cfg.Checksums != nil {
		t.Fatalf("no checksums: %v %v", cfg.Checksums, err)
	}
	// The daemon refuses to start the plugin whose sum differs.
	s, err := settingsFrom(t, `{"ports":["7000-7010"],"plugins":{"dir":"`+dir+`","checksums":{"iofog-transport-fast":"`+hex.EncodeToString(sum[:])+`"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadTransports(t.Context(), transportOptions{Settings: s.Transports}); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a plugin with another sum was not refused: %v", err)
	}
	s, err = settingsFrom(t, `{"ports":["7000-7010"],"transports":{"qiuc":{"pin-sha256":"x"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadTransports(t.Context(), transportOptions{Settings: s.Transports}); err == nil ||
		err.Error() != `transports.qiuc: there is no transport "qiuc" (have: quic, tcp, yamux)` {
		t.Fatalf("a subtree naming no transport: %v", err)
	}
}

// TestSettingsQuicPinE2E: an operator pins a dev-mode connector's quic
// identity for the agent from the environment or the agent's --config: the
// right pin links and relays, a wrong one is refused; and
// transports.quic.identity-dir of the daemon's settings file decides
// where the daemon keeps that identity.
func TestSettingsQuicPinE2E(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	idDir := filepath.Join(t.TempDir(), "ids")
	d := e2eStartDaemon(t, e2eOptions{Ports: 10, Settings: map[string]any{"transports": map[string]any{"quic": map[string]any{"identity-dir": idDir}}}})
	echo := haEcho(t)
	add := func() e2eMapping {
		return d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"quic"}`)
	}
	m := add()
	b, err := os.ReadFile(filepath.Join(idDir, "quic-identity.crt"))
	if err != nil {
		t.Fatalf("transports.quic.identity-dir: %v", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("quic-identity.crt holds no PEM block")
	}
	sum := sha256.Sum256(block.Bytes)
	pin := hex.EncodeToString(sum[:])

	wrong := strings.Repeat("00", 32)
	bad := haStartAgent(t, []string{"IOFOG_AGENT_PASSCODE=" + m.Passcode1, "IOFOG_CONNECTOR_TRANSPORTS_QUIC_PIN_SHA256=" + wrong},
		haAgentArgs("public", d.Addr(m.Port1), "--local", echo, "--transport", "quic", "--plaintext")...)
	haWaitLog(t, bad, "does not match the pinned fingerprint", 30*time.Second)
	if s := haSide1(t, d, m.ID); s == "Active" {
		t.Fatalf("an agent with a wrong pin linked (status %q)", s)
	}
	bad.kill()

	m = add()
	good := haStartAgent(t, []string{"IOFOG_AGENT_PASSCODE=" + m.Passcode1},
		haAgentArgs("public", d.Addr(m.Port1), "--local", echo, "--transport", "quic", "--plaintext", "--config",
			writeFile(t, `{"transports":{"quic":{"pin-sha256":"`+pin+`"}}}`))...)
	haWaitRoundTrip(t, good, d.Addr(m.Port2), nil, 64<<10, 60*time.Second)
	if !strings.Contains(good.out.String(), "must match transports.quic.pin-sha256") {
		t.Errorf("the agent does not say it verifies the pin:\n%s", good.out.String())
	}
	if strings.Contains(good.out.String(), "NOT verified") {
		t.Errorf("a pinned agent warns that the connector is not verified:\n%s", good.out.String())
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
