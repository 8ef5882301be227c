package control

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
)

// FuzzHandler sends arbitrary requests to the control routes: whatever
// the method, path, query and body, the handler neither panics nor hangs,
// answers a status of its known set, and every JSON answer is valid JSON
// (an error one with its message).
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/mapping", []byte(`{"ID":"web","Type":"public","MaxConnections1":8}`))
	f.Add("POST", "/mapping", []byte(`{"Type":"public","Surprise":1}`))
	f.Add("POST", "/mapping", []byte(`{"Type":"public","IdleTimeout":"x"}`))
	f.Add("GET", "/mapping?id=web", []byte(nil))
	f.Add("DELETE", "/mapping?id=%zz", []byte(nil))
	f.Add("GET", "/mappings", []byte(nil))
	f.Add("GET", "/status", []byte(nil))
	f.Add("POST", "/reload", []byte(`{}`))
	f.Add("PUT", "/status", []byte("x"))
	known := map[int]bool{200: true, 301: true, 307: true, 308: true, // redirects: the mux cleans paths
		400: true, 404: true, 405: true, 409: true, 413: true, 422: true, 500: true, 501: true, 503: true, 507: true}
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t") || method == "" || strings.ContainsAny(method, " \r\n\t/") {
			return // not a request line net/http would parse
		}
		c := &memCore{m: map[string]core.MappingStatus{}}
		_, _ = c.Add(context.Background(), core.AddRequest{ID: "web", Type: core.TypePublic})
		h := NewServer(Config{
			Core:   c,
			Status: func() status.Daemon { return status.Daemon{Mappings: []status.Row{}} },
			Stop:   func() {},
		}).Handler()
		r, err := http.NewRequest(method, "http://control"+target, bytes.NewReader(body))
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !known[w.Code] {
			t.Fatalf("%s %s: status %d is none the control socket answers", method, target, w.Code)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			var v any
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s %s: answer is not JSON: %v: %q", method, target, err, w.Body.String())
			}
			if w.Code != 200 {
				if e, _ := v.(map[string]any)["error"].(string); e == "" {
					t.Fatalf("%s %s: error answer %d without a message: %q", method, target, w.Code, w.Body.String())
				}
			}
		}
	})
}
