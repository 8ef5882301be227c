package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/iofog/iofog-connector/api/metrics"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

type fakeCore struct{ list []core.MappingStatus }

func (f *fakeCore) List() []core.MappingStatus { return f.list }

type fakePorts struct{ free, size int }

func (p fakePorts) Free() int { return p.free }
func (p fakePorts) Size() int { return p.size }

// fakeTransport is an sdk.Transport; with restarts >= 0 it reports them
// as a plugin does.
type fakeTransport struct {
	sdk.Transport
	name string
}

func (f fakeTransport) Name() string { return f.name }

type fakePlugin struct {
	fakeTransport
	restarts int64
}

func (f fakePlugin) Restarts() int64 { return f.restarts }

// series finds the value of metric name with exactly labels, in the
// families gathered.
func series(mfs []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			ok := true
			for _, l := range m.GetLabel() {
				ok = ok && labels[l.GetName()] == l.GetValue()
			}
			if !ok {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

func count(mfs []*dto.MetricFamily, name string) int {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func sampleSources() metrics.Sources {
	pub := core.MappingStatus{
		Mapping: core.Mapping{ID: "pub-1", Type: core.TypePublic, Port1: 7000, Port2: 7001, Transport: "tcp", Passcode1: "SECRETPASS1"},
		Side1: core.SideStatus{Port: 7000, Links: 3, Failed: 7, Restarts: 2,
			FailedByReason: map[string]int64{sdk.FailureBadPasscode: 4, sdk.FailureTimeout: 1}},
		Side2:  core.SideStatus{Port: 7001, Restarts: 1},
		Active: 2, Total: 10, Refused: 5, BytesUp: 1000, BytesDown: 2000,
		RefusedNoAgent: 3, RefusedTLS: 2, Waiting: 4,
	}
	priv := core.MappingStatus{
		Mapping: core.Mapping{ID: "priv-1", Type: core.TypePrivate, Port1: 7002, Port2: 7003, Transport: "yamux", Passcode1: "SECRETPASS2", Passcode2: "SECRETPASS3"},
		Side1:   core.SideStatus{Port: 7002, Links: 1},
		Side2:   core.SideStatus{Port: 7003, Links: 1, Failed: 2}, // a transport that does not split
		Active:  1, Total: 1, BytesUp: 5, BytesDown: 6,
	}
	return metrics.Sources{
		Core:  &fakeCore{list: []core.MappingStatus{pub, priv}},
		Ports: fakePorts{free: 36, size: 40},
		Transports: map[string]sdk.Transport{
			"tcp": fakeTransport{name: "tcp"}, "yamux": fakeTransport{name: "yamux"},
			"websocket": fakePlugin{fakeTransport{name: "websocket"}, 3},
		},
	}
}

// TestCollectorSeries checks every metric the collector makes against a
// snapshot of a public and a private mapping.
func TestCollectorSeries(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "9.9.9-test"})
	m.Watch(sampleSources())
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	type L = map[string]string
	for _, tt := range []struct {
		name   string
		labels L
		want   float64
	}{
		{"iofog_connector_ports_free", L{}, 36},
		{"iofog_connector_ports_used", L{}, 4},
		{"iofog_connector_plugin_restarts_total", L{"transport": "websocket"}, 3},
		{"iofog_connector_mappings", L{"type": "public", "transport": "tcp"}, 1},
		{"iofog_connector_mappings", L{"type": "private", "transport": "yamux"}, 1},
		{"iofog_connector_mappings", L{"type": "private", "transport": "tcp"}, 0},
		{"iofog_connector_mappings", L{"type": "public", "transport": "websocket"}, 0},
		{"iofog_connector_mapping_info", L{"mapping_id": "pub-1", "type": "public", "transport": "tcp", "port1": "7000", "port2": "7001"}, 1},
		{"iofog_connector_agent_links", L{"mapping_id": "pub-1", "side": "1"}, 3},
		{"iofog_connector_agent_links", L{"mapping_id": "priv-1", "side": "1"}, 1},
		{"iofog_connector_agent_links", L{"mapping_id": "priv-1", "side": "2"}, 1},
		{"iofog_connector_public_clients_waiting", L{"mapping_id": "pub-1"}, 4},
		{"iofog_connector_relayed_connections_active", L{"mapping_id": "pub-1"}, 2},
		{"iofog_connector_relayed_connections_total", L{"mapping_id": "pub-1"}, 10},
		{"iofog_connector_relayed_bytes_total", L{"mapping_id": "pub-1", "direction": "up"}, 1000},
		{"iofog_connector_relayed_bytes_total", L{"mapping_id": "pub-1", "direction": "down"}, 2000},
		{"iofog_connector_relayed_bytes_total", L{"mapping_id": "priv-1", "direction": "down"}, 6},
		{"iofog_connector_agent_handshake_failures_total", L{"mapping_id": "pub-1", "side": "1", "reason": "bad_passcode"}, 4},
		{"iofog_connector_agent_handshake_failures_total", L{"mapping_id": "pub-1", "side": "1", "reason": "timeout"}, 1},
		{"iofog_connector_agent_handshake_failures_total", L{"mapping_id": "pub-1", "side": "1", "reason": "unknown"}, 2},
		{"iofog_connector_agent_handshake_failures_total", L{"mapping_id": "priv-1", "side": "2", "reason": "unknown"}, 2},
		{"iofog_connector_public_clients_refused_total", L{"mapping_id": "pub-1", "reason": "no_agent_in_time"}, 3},
		{"iofog_connector_public_clients_refused_total", L{"mapping_id": "pub-1", "reason": "tls_handshake"}, 2},
		{"iofog_connector_port_restarts_total", L{"mapping_id": "pub-1", "side": "1"}, 2},
		{"iofog_connector_port_restarts_total", L{"mapping_id": "pub-1", "side": "2"}, 1},
		{"iofog_connector_build_info", L{"version": "9.9.9-test", "goversion": runtime.Version()}, 1},
	} {
		got, ok := series(mfs, tt.name, tt.labels)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	// Zero counters have no series; a private mapping has no waiting
	// clients or refusals; tcp and yamux are no plugins.
	for _, absent := range []struct {
		name   string
		labels L
	}{
		{"iofog_connector_public_clients_refused_total", L{"mapping_id": "pub-1", "reason": "too_many_waiting"}},
		{"iofog_connector_public_clients_waiting", L{"mapping_id": "priv-1"}},
		{"iofog_connector_agent_links", L{"mapping_id": "pub-1", "side": "2"}},
		{"iofog_connector_agent_handshake_failures_total", L{"mapping_id": "pub-1", "side": "1", "reason": "limit"}},
		{"iofog_connector_plugin_restarts_total", L{"transport": "tcp"}},
	} {
		if v, ok := series(mfs, absent.name, absent.labels); ok {
			t.Errorf("%s%v = %v, want no series", absent.name, absent.labels, v)
		}
	}
	if n := count(mfs, "iofog_connector_mappings"); n != 6 {
		t.Errorf("iofog_connector_mappings has %d series, want 6 (2 types x 3 transports)", n)
	}
	for _, want := range []string{"go_goroutines", "process_open_fds"} {
		if count(mfs, want) == 0 {
			t.Errorf("no %s: the Go and process collectors are not registered", want)
		}
	}
}

// TestNoPasscodes: the exposition never carries a passcode.
func TestNoPasscodes(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "x"})
	m.Watch(sampleSources())
	body := scrape(t, m.Handler())
	if strings.Contains(body, "SECRETPASS") {
		t.Fatalf("a passcode is in the metrics:\n%s", body)
	}
	if !strings.Contains(body, `iofog_connector_relayed_bytes_total{direction="up",mapping_id="pub-1"} 1000`) {
		t.Fatalf("exposition lacks the byte counter:\n%s", body)
	}
}

// TestOwnRegistry: the metrics never land in the global registry, and
// two instances do not clash.
func TestOwnRegistry(t *testing.T) {
	a := metrics.New(metrics.Config{Version: "a"})
	b := metrics.New(metrics.Config{Version: "b"})
	a.Watch(sampleSources())
	b.Watch(sampleSources())
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "iofog_connector_") {
			t.Errorf("%s is in the default registry", mf.GetName())
		}
	}
}

// TestBeforeWatch: before Watch only build info, the store histogram
// and the runtime metrics are served.
func TestBeforeWatch(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "x"})
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if count(mfs, "iofog_connector_build_info") != 1 || count(mfs, "iofog_connector_mappings") != 0 {
		t.Fatal("unexpected series before Watch")
	}
}

// TestStoreSyncHistogram: each observation lands in its bucket, in seconds.
func TestStoreSyncHistogram(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "x"})
	m.ObserveStoreSync(300 * time.Microsecond)
	m.ObserveStoreSync(2 * time.Millisecond)
	m.ObserveStoreSync(3 * time.Second)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var h *dto.Histogram
	for _, mf := range mfs {
		if mf.GetName() == "iofog_connector_store_sync_duration_seconds" {
			h = mf.GetMetric()[0].GetHistogram()
		}
	}
	if h == nil {
		t.Fatal("no store sync histogram")
	}
	if h.GetSampleCount() != 3 || h.GetSampleSum() < 3.002 || h.GetSampleSum() > 3.0024 {
		t.Fatalf("count %d sum %v, want 3 and 3.0023", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		want := uint64(0)
		switch ub := b.GetUpperBound(); {
		case ub >= 0.002:
			want = 2
		case ub >= 0.0003:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}

func scrape(t testing.TB, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", metrics.Path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", metrics.Path, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestServe runs the listener: GET /metrics answers the text format,
// other paths 404, other methods 405, an oversized header 431, and a
// cancelled ctx shuts it down with nil.
func TestServe(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "x"})
	m.Watch(sampleSources())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of cancel")
		}
	}()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(method, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		return resp, string(b)
	}
	resp, body := get("GET", metrics.Path, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(body, "iofog_connector_mapping_info{") {
		t.Fatalf("GET /metrics: %d %q\n%.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, tt := range []struct {
		method, path string
		hdr          map[string]string
		want         int
	}{
		{"GET", "/", nil, 404},
		{"GET", "/api/v2/status", nil, 404},
		{"POST", metrics.Path, nil, 405},
		{"GET", metrics.Path, map[string]string{"X-Big": strings.Repeat("a", 64<<10)}, 431},
	} {
		if resp, _ := get(tt.method, tt.path, tt.hdr); resp.StatusCode != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}

// TestSlowHeaderClosed: a client that never finishes its header is cut
// off by ReadHeaderTimeout (5 s), not held forever.
func TestSlowHeaderClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s header timeout")
	}
	m := metrics.New(metrics.Config{Version: "x"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Serve(ctx, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n") // no blank line
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server held a half-sent request for 20 s")
	}
}
