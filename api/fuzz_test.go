package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iofog/iofog-connector/core"
)

// FuzzAddRequest feeds the add request's "mapping" value to its parser:
// it never panics, refuses with an error that maps to 400, and what it
// accepts is a request the core's limits allow.
func FuzzAddRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000}`,
		`{"type":"private","maxconnectionsport1":1, "maxconnectionsport2":1, "heartbeatabsencethresholdport1":200000, "heartbeatabsencethresholdport2":200000}`,
		`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"idletimeout":1500,"id":"edge-1","transport":"yamux"}`,
		`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"proxyprotocol":"v2"}`,
		`{"type":"public","type":"private"}`,
		`{"type":"public","\u0074ype":"private"}`,
		`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"id":"a\u202eb"}`,
		`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":999}`,
		`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":1e3}`,
		`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000}{}`,
		`{"x":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}`,
		`null`, `[]`, `{`, `"str"`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		req, err := parseMapping(raw)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("error %v maps to %d, not 400", err, errorStatus(err))
			}
			if errorStatus(err) != http.StatusBadRequest {
				t.Fatalf("error %v maps to %d", err, errorStatus(err))
			}
			return
		}
		switch {
		case req.Type != core.TypePublic && req.Type != core.TypePrivate:
			t.Fatalf("accepted type %q", req.Type)
		case req.MaxConnections1 < 1 || (req.Type == core.TypePrivate && req.MaxConnections2 < 1):
			t.Fatalf("accepted limits %d/%d", req.MaxConnections1, req.MaxConnections2)
		case req.Heartbeat1 < core.MinHeartbeatThreshold || (req.Type == core.TypePrivate && req.Heartbeat2 < core.MinHeartbeatThreshold):
			t.Fatalf("accepted thresholds %v/%v", req.Heartbeat1, req.Heartbeat2)
		case req.IdleTimeout != 0 && (req.IdleTimeout < core.MinIdleTimeout || req.IdleTimeout > core.MaxIdleTimeout):
			t.Fatalf("accepted idle timeout %v", req.IdleTimeout)
		}
		if req.ID != "" {
			if err := core.CheckID(req.ID); err != nil {
				t.Fatalf("accepted id %q: %v", req.ID, err)
			}
		}
		// An accepted mapping is one JSON object without repeated keys.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &obj); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", raw, err)
		}
	})
}

// allowedStatus are the answers the API may give a request that does not
// reach a failing core.
var allowedStatus = map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 507: true}

// FuzzForm sends arbitrary requests (method, path, body, headers) through
// the whole handler, with and without a token: no panic, every answer is a
// JSON object with a timestamp, errors carry an errormessage, and the
// status is one the Controller knows.
func FuzzForm(f *testing.F) {
	f.Add("POST", "/api/v2/mapping/add", []byte("mapping=%7B%22type%22%3A%22public%22%2C%22maxconnections%22%3A60%2C%22heartbeatabsencethreshold%22%3A200000%7D"), "", "", "", false)
	f.Add("POST", "/api/v2/status", []byte("mappingid=all"), "Bearer "+testToken, "", "", true)
	f.Add("POST", "/api/v2/status", []byte("mappingid=all"), "Bearer nope", "", "", true)
	f.Add("POST", "/api/v2/commandline", []byte("command=stop"), "", "http://evil.example", "cross-site", false)
	f.Add("POST", "/api//v2/status", []byte("mappingid=id-1"), "", "", "", false)
	f.Add("GET", "/api/v2/status", []byte(""), "", "", "", false)
	f.Add("POST", "/api/v2/mapping/remove", []byte("mappingid=id-1&mappingid=x"), "", "", "", false)
	f.Add("POST", "/api/v2/mapping/add", []byte("mapping=%ZZ"), "", "", "same-origin", false)
	f.Add("POST", "/api/v2/mapping/add", bytes.Repeat([]byte("m"), DefaultMaxBodyBytes+1), "", "", "", false)
	f.Fuzz(func(t *testing.T, method, path string, body []byte, auth, origin, fetchSite string, withToken bool) {
		cfg := Config{Core: &fakeCore{}, Version: "fuzz"}
		if withToken {
			cfg.Token = testToken
		}
		h := New(cfg).Handler()
		r, err := http.NewRequest(method, "http://127.0.0.1:8080"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range map[string]string{"Authorization": auth, "Origin": origin, "Sec-Fetch-Site": fetchSite} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		r.RemoteAddr = "192.0.2.1:4242" // not local: stop is refused
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !allowedStatus[w.Code] {
			t.Fatalf("%s %q answered %d: %s", method, path, w.Code, w.Body.Bytes())
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %q answered %d with non-JSON %q", method, path, w.Code, w.Body.Bytes())
		}
		if _, ok := out["timestamp"].(float64); !ok {
			t.Fatalf("no timestamp in %v", out)
		}
		if w.Code >= 400 {
			if msg, _ := out["errormessage"].(string); msg == "" {
				t.Fatalf("%d without errormessage: %v", w.Code, out)
			}
		}
		if withToken && w.Code != 401 && !strings.Contains(auth, testToken) {
			t.Fatalf("served %d without the token (Authorization %q)", w.Code, auth)
		}
	})
}
