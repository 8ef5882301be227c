package metrics_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/iofog/iofog-connector/api/metrics"
	"github.com/iofog/iofog-connector/core"
)

// FuzzExpositionIDs: a mapping id comes from the Controller over the
// network; whatever the id and transport name (core refuses ids that are
// not printable UTF-8, but the metrics do not rely on it), a scrape does
// not panic, stays parseable and carries the id back (invalid UTF-8
// replaced), so an id cannot forge or break series.
func FuzzExpositionIDs(f *testing.F) {
	for _, id := range []string{"a", `x"} 1` + "\n" + `iofog_connector_ports_free 9`, `back\slash`, "ünï©ødé", "id{with}=braces,\"quotes\"", "\u202eevil"} {
		f.Add(id, "tcp", int64(12345))
	}
	f.Add("bad\xff\xfeutf8", "tc\xffp", int64(1))
	f.Fuzz(func(t *testing.T, id, transport string, n int64) {
		m := metrics.New(metrics.Config{Version: "fuzz"})
		m.Watch(metrics.Sources{Core: &fakeCore{list: []core.MappingStatus{{
			Mapping: core.Mapping{ID: id, Type: core.TypePublic, Transport: transport, Port1: 1, Port2: 2},
			BytesUp: n & (1<<52 - 1),
		}}}})
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", metrics.Path, nil))
		if rec.Code != 200 {
			t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatalf("exposition with id %q does not parse: %v", id, err)
		}
		found := false
		for _, mm := range mfs["iofog_connector_relayed_bytes_total"].GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "mapping_id" {
					if want := strings.ToValidUTF8(id, "\uFFFD"); l.GetValue() != want {
						t.Fatalf("mapping_id %q came back as %q", id, l.GetValue())
					}
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("no series for id %q", id)
		}
		if got := len(mfs["iofog_connector_ports_free"].GetMetric()); got != 0 {
			t.Fatalf("id %q forged %d ports_free series", id, got)
		}
	})
}
