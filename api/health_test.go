package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iofog/iofog-connector/core"
)

// listCore is fakeCore plus the mapping list readiness reads.
type listCore struct {
	fakeCore
	list []core.MappingStatus
}

func (l *listCore) List() []core.MappingStatus { return l.list }

func getJSON(t *testing.T, h http.Handler, method, path string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if method == http.MethodHead {
		return w.Code, nil // a real server drops the body of a HEAD answer
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v: %q", method, path, err, w.Body.String())
	}
	return w.Code, body
}

func TestHealthz(t *testing.T) {
	h := New(Config{Core: &fakeCore{}}).Handler()
	code, body := getJSON(t, h, "GET", HealthzPath)
	if code != 200 || body["status"] != "ok" || body["timestamp"] == nil {
		t.Fatalf("GET /healthz: %d %v", code, body)
	}
	if code, _ := getJSON(t, h, "HEAD", HealthzPath); code != 200 {
		t.Fatalf("HEAD /healthz: %d", code)
	}
	// Only reads: a POST is not a probe.
	if code, _ := getJSON(t, h, "POST", HealthzPath); code == 200 {
		t.Fatalf("POST /healthz answered 200")
	}
}

func TestReadyz(t *testing.T) {
	public := func(id string, listening bool) core.MappingStatus {
		return core.MappingStatus{Mapping: core.Mapping{ID: id, Type: core.TypePublic}, Side2: core.SideStatus{Active: listening}}
	}
	// A private mapping with no agent linked yet is ready: its ports listen.
	private := core.MappingStatus{Mapping: core.Mapping{ID: "p", Type: core.TypePrivate}}
	tests := []struct {
		name     string
		core     Core
		wantCode int
		wantDown float64
	}{
		{"no mappings", &listCore{}, 200, 0},
		{"all listening", &listCore{list: []core.MappingStatus{public("a", true), private}}, 200, 0},
		{"public port not listening", &listCore{list: []core.MappingStatus{public("a", true), public("secret-id", false), private}}, 503, 1},
		{"core without a list fails closed", &fakeCore{}, 503, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{Core: tt.core}).Handler()
			got, body := getJSON(t, h, "GET", ReadyzPath)
			if got != tt.wantCode {
				t.Fatalf("GET /readyz: %d %v, want %d", got, body, tt.wantCode)
			}
			if got != 200 {
				if msg, _ := body["errormessage"].(string); msg == "" || body["status"] != "error" {
					t.Fatalf("503 without a reason: %v", body)
				}
				if d, ok := body["down"]; tt.wantDown > 0 && d != tt.wantDown {
					t.Fatalf("down = %v (present %v), want %v", d, ok, tt.wantDown)
				}
			} else if body["status"] != "ready" {
				t.Fatalf("200 body: %v", body)
			}
			raw, _ := json.Marshal(body)
			if containsID(string(raw)) {
				t.Fatalf("readiness reveals a mapping id: %s", raw)
			}
		})
	}
}

func containsID(s string) bool {
	return strings.Contains(s, "secret-id") || strings.Contains(s, `"a"`)
}
