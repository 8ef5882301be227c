package metrics_test

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/iofog/iofog-connector/api/metrics"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

// sources10k is a snapshot of n public mappings with live links and
// traffic, one in ten with handshake failures and refusals.
func sourcesN(n int) metrics.Sources {
	list := make([]core.MappingStatus, n)
	for i := range list {
		st := core.MappingStatus{
			Mapping: core.Mapping{ID: fmt.Sprintf("2f1c7a3e-0000-4000-8000-%012d", i), Type: core.TypePublic,
				Port1: 10000 + 2*i, Port2: 10001 + 2*i, Transport: "tcp"},
			Side1:  core.SideStatus{Links: 4},
			Active: 1, Total: int64(i), BytesUp: int64(i) << 10, BytesDown: int64(i) << 12,
		}
		if i%10 == 0 {
			st.Side1.Failed = 3
			st.Side1.FailedByReason = map[string]int64{sdk.FailureBadPasscode: 3}
			st.Refused, st.RefusedNoAgent = 2, 2
		}
		list[i] = st
	}
	return metrics.Sources{Core: &fakeCore{list: list}, Ports: fakePorts{free: 100, size: 2*n + 100},
		Transports: map[string]sdk.Transport{"tcp": fakeTransport{name: "tcp"}}}
}

// BenchmarkScrape10k serves one scrape of 10,000 mappings through the
// HTTP handler (collect, gather, encode), as Prometheus would.
func BenchmarkScrape10k(b *testing.B) {
	m := metrics.New(metrics.Config{Version: "bench"})
	m.Watch(sourcesN(10000))
	h := m.Handler()
	size := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", metrics.Path, nil))
		if rec.Code != 200 {
			b.Fatalf("scrape: %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// TestScrape10kSeries: a scrape of 10,000 mappings carries each mapping's
// series once, within a bounded size (about 8 series per healthy mapping).
func TestScrape10kSeries(t *testing.T) {
	m := metrics.New(metrics.Config{Version: "x"})
	m.Watch(sourcesN(10000))
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(mfs, "iofog_connector_mapping_info"); n != 10000 {
		t.Fatalf("mapping_info series: %d, want 10000", n)
	}
	if n := count(mfs, "iofog_connector_agent_handshake_failures_total"); n != 1000 {
		t.Fatalf("handshake failure series: %d, want 1000 (only the mappings with failures)", n)
	}
	body := scrape(t, m.Handler())
	if len(body) > 16<<20 {
		t.Fatalf("a scrape of 10,000 mappings is %d bytes", len(body))
	}
}

// BenchmarkScrape10kGzip is BenchmarkScrape10k as Prometheus asks for it
// (Accept-Encoding: gzip).
func BenchmarkScrape10kGzip(b *testing.B) {
	m := metrics.New(metrics.Config{Version: "bench"})
	m.Watch(sourcesN(10000))
	h := m.Handler()
	size := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", metrics.Path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" {
			b.Fatalf("scrape: %d %q", rec.Code, rec.Header().Get("Content-Encoding"))
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
