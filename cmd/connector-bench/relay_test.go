package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI answers the ioFog v2 REST routes the harness uses, as the
// compatibility contract describes them.
func fakeAPI(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/mapping/add", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.Unmarshal([]byte(r.PostFormValue("mapping")), &m); err != nil || m["type"] != "public" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errormessage":"bad mapping"}`))
			return
		}
		i := n.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "id": "m" + string(rune('0'+i)), "port1": 10000 + 2*i, "port2": 10001 + 2*i,
			"passcode1": "p", "passcode2": "", "timestamp": 1})
	})
	mux.HandleFunc("POST /api/v2/status", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("mappingid") == "all" {
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "running", "id": "all", "mappings": n.Load()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"public": "Active", "private": "Active"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDaemonAPIClient(t *testing.T) {
	srv, n := fakeAPI(t)
	dir := t.TempDir()
	d, err := newDaemon(&cleanup{}, slog.New(slog.NewTextHandler(io.Discard, nil)), daemonOptions{Bin: "unused", Dir: dir, Dev: true, Transport: "tcp", Ports: "10000-10099"})
	if err != nil {
		t.Fatal(err)
	}
	d.apiBase = srv.URL
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	m, err := d.addPublic(ctx, "tcp", 60)
	if err != nil || m.Port1 == 0 || m.Port2 == 0 || m.Passcode1 != "p" {
		t.Fatalf("addPublic = %+v, %v", m, err)
	}
	if got := publicAddr(m); got != "127.0.0.1:10003" {
		t.Errorf("publicAddr = %s, want 127.0.0.1:10003", got)
	}
	rate, failed, err := addMany(ctx, d, 20, 4)
	if err != nil || failed != 0 || rate <= 0 || n.Load() != 21 {
		t.Errorf("addMany = %v/s, %d failed, %v; server saw %d adds, want 21", rate, failed, err, n.Load())
	}
	if got, err := d.statusAll(ctx); err != nil || got != 21 {
		t.Errorf("statusAll = %d, %v; want 21", got, err)
	}
	if !d.mappingActive(ctx, m.ID) {
		t.Error("mappingActive = false, want true")
	}
	var out map[string]any
	if err := d.post(ctx, "/api/v2/nope", nil, &out); !errors.Is(err, errAPI) {
		t.Errorf("unknown route: err = %v, want errAPI", err)
	}

	// The settings file is the legacy JSON plus our keys.
	b, err := os.ReadFile(filepath.Join(dir, "iofog-connector.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var settings map[string]any
	if err := json.Unmarshal(b, &settings); err != nil {
		t.Fatal(err)
	}
	if settings["dev"] != true || settings["address"] != "127.0.0.1" || settings["transport"] != "tcp" {
		t.Errorf("settings = %v", settings)
	}
	if p, _ := settings["ports"].([]any); len(p) != 1 || p[0] != "10000-10099" {
		t.Errorf("settings ports = %v, want [10000-10099]", settings["ports"])
	}
}

func TestTLSDaemonWritesCertificate(t *testing.T) {
	dir := t.TempDir()
	d, err := newDaemon(&cleanup{}, slog.New(slog.NewTextHandler(io.Discard, nil)), daemonOptions{Bin: "unused", Dir: dir, Dev: false})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"server-cert.pem", "server-key.pem"} {
		if !fileExists(filepath.Join(dir, f)) {
			t.Errorf("%s not written", f)
		}
	}
	if d.tlsCfg == nil || d.caFile == "" || d.apiBase[:8] != "https://" {
		t.Fatalf("TLS daemon: tlsCfg %v caFile %q api %s", d.tlsCfg != nil, d.caFile, d.apiBase)
	}
	// A TLS service with the written identity must be reachable by the
	// public-port client config.
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), ln) }()
	r, err := pingPong(ctx, newDialer(ln.Addr().String(), d.tlsCfg), 10, 64)
	if err != nil || len(r.RTT) != 10 {
		t.Errorf("ping-pong over TLS: %d RTTs, %v", len(r.RTT), err)
	}
	cancel()
	<-done
}
