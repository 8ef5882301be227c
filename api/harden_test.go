package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core"
)

const testToken = "s3cret-token-0123456789"

// answer is one recorded response.
type answer struct {
	code int
	hdr  http.Header
	body map[string]any
}

// send serves one request and checks what every answer must be: a JSON
// object with a timestamp, and an errormessage on every error status.
func send(t *testing.T, h http.Handler, method, target, body string, hdr map[string]string) answer {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a := answer{code: w.Code, hdr: w.Header()}
	if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s answered %d with non-JSON %q", method, target, w.Code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, target, ct)
	}
	if w.Code >= 400 {
		if msg, _ := a.body["errormessage"].(string); msg == "" || a.body["status"] != "error" {
			t.Fatalf("%s %s: %d without an errormessage: %v", method, target, w.Code, a.body)
		}
	}
	return a
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestTokenRequiredOnEveryRoute(t *testing.T) {
	var stops atomic.Int32
	fc := &fakeCore{}
	h := New(Config{Core: fc, Token: testToken, Stop: func() { stops.Add(1) }}).Handler()
	requests := []struct{ method, path, body string }{
		{"POST", "/api/v2/mapping/add", form("mapping", `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000}`)},
		{"POST", "/api/v2/mapping/remove", form("mappingid", "id-1")},
		{"POST", "/api/v2/status", form("mappingid", "all")},
		{"POST", "/api/v2/status", form("mappingid", "id-1")},
		{"POST", "/api/v2/commandline", form("command", "stop")},
		{"POST", "/api/v2/commandline", form("command", "version")},
		{"GET", "/api/v2/status", ""},
		{"POST", "/api/v3/nothing", ""},
		{"POST", "/api//v2/status", ""},
	}
	for _, auth := range []struct{ name, value, challenge string }{
		{"none", "", `Bearer realm="iofog-connector"`},
		{"wrong", "Bearer " + testToken + "x", `Bearer realm="iofog-connector", error="invalid_token"`},
		{"prefix", "Bearer " + testToken[:len(testToken)-1], `error="invalid_token"`},
		{"empty bearer", "Bearer ", `error="invalid_token"`},
		{"basic", "Basic " + testToken, `error="invalid_token"`},
		{"no scheme", testToken, `error="invalid_token"`},
	} {
		for _, rq := range requests {
			a := send(t, h, rq.method, rq.path, rq.body, map[string]string{"Authorization": auth.value})
			if a.code != 401 || !strings.HasPrefix(a.hdr.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(a.hdr.Get("WWW-Authenticate"), auth.challenge) {
				t.Fatalf("%s token, %s %s: %d %q %v; want 401 with a Bearer challenge", auth.name, rq.method, rq.path, a.code, a.hdr.Get("WWW-Authenticate"), a.body)
			}
			if !strings.Contains(a.body["errormessage"].(string), "authentication required") {
				t.Fatalf("errormessage %q", a.body["errormessage"])
			}
		}
	}
	if len(fc.adds) != 0 || len(fc.removed) != 0 || stops.Load() != 0 {
		t.Fatalf("refused requests reached the core: adds %d removes %d stops %d", len(fc.adds), len(fc.removed), stops.Load())
	}
	// Two Authorization headers are refused even if one is right.
	r := httptest.NewRequest("POST", "/api/v2/status", strings.NewReader(form("mappingid", "all")))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Add("Authorization", "Bearer "+testToken)
	r.Header.Add("Authorization", "Bearer other")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("two Authorization headers: %d", w.Code)
	}
	// With the token (either case of the scheme) everything works.
	for _, scheme := range []string{"Bearer ", "bearer "} {
		ok := map[string]string{"Authorization": scheme + testToken}
		if a := send(t, h, "POST", "/api/v2/status", form("mappingid", "all"), ok); a.code != 200 || a.body["status"] != "running" {
			t.Fatalf("status with token: %d %v", a.code, a.body)
		}
		if a := send(t, h, "POST", "/api/v2/mapping/add", requests[0].body, ok); a.code != 200 || a.body["passcode1"] != "p1" {
			t.Fatalf("add with token: %d %v", a.code, a.body)
		}
	}
}

func TestRequireClientCert(t *testing.T) {
	h := New(Config{Core: &fakeCore{}, RequireClientCert: true}).Handler()
	a := send(t, h, "POST", "/api/v2/status", form("mappingid", "all"), nil)
	if a.code != 401 || !strings.Contains(a.body["errormessage"].(string), "client certificate") {
		t.Fatalf("no client certificate: %d %v", a.code, a.body)
	}
}

// TestNoLockByDefault: without token or client CA the Controller's calls
// (no Authorization, Origin or Sec-Fetch-Site header) work as before.
func TestNoLockByDefault(t *testing.T) {
	h := New(Config{Core: &fakeCore{}}).Handler()
	if a := send(t, h, "POST", "/api/v2/status", form("mappingid", "all"), nil); a.code != 200 {
		t.Fatalf("status: %d %v", a.code, a.body)
	}
	if a := send(t, h, "POST", "/api/v2/status", form("mappingid", "all"), map[string]string{"Authorization": "Bearer whatever"}); a.code != 200 {
		t.Fatalf("status with an unasked-for token: %d %v", a.code, a.body)
	}
}

func TestCrossOriginRefused(t *testing.T) {
	var stops atomic.Int32
	h := New(Config{Core: &fakeCore{}, Stop: func() { stops.Add(1) }}).Handler()
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "http://evil.example"},
		{"Origin": "http://evil.example:8080", "Sec-Fetch-Site": ""},
		{"Origin": "null"},
	} {
		for _, path := range []string{"/api/v2/commandline", "/api/v2/mapping/add", "/api/v2/mapping/remove", "/api/v2/status"} {
			a := send(t, h, "POST", path, form("command", "stop", "mappingid", "id-1", "mapping", "{}"), hdr)
			if a.code != 403 || !strings.Contains(a.body["errormessage"].(string), "cross-origin") {
				t.Fatalf("%v %s: %d %v; want 403", hdr, path, a.code, a.body)
			}
		}
	}
	if stops.Load() != 0 {
		t.Fatal("a cross-origin stop reached Stop")
	}
	// Same-origin browser requests and the Controller are served.
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "same-origin"},
		{"Sec-Fetch-Site": "none"},
		{"Origin": "http://example.com"}, // httptest's Host is example.com
		nil,
	} {
		if a := send(t, h, "POST", "/api/v2/status", form("mappingid", "all"), hdr); a.code != 200 {
			t.Fatalf("%v: %d %v", hdr, a.code, a.body)
		}
	}
}

func TestUncleanPathsAnswerJSON404(t *testing.T) {
	h := New(Config{Core: &fakeCore{}}).Handler()
	for _, p := range []string{"/api//v2/status", "//api/v2/status", "/api/v2/status/", "/api/v2/./status", "/api/v2/x/../status", "/api/v2/%2e%2e/v2/status", "/api/v2/status//"} {
		a := send(t, h, "POST", p, form("mappingid", "all"), nil)
		if a.code != 404 || a.hdr.Get("Location") != "" {
			t.Fatalf("%s: %d (Location %q) %v; want a JSON 404", p, a.code, a.hdr.Get("Location"), a.body)
		}
	}
}

func TestWrongMethodIs405(t *testing.T) {
	h := New(Config{Core: &fakeCore{}}).Handler()
	for _, m := range []string{"GET", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, p := range []string{"/api/v2/mapping/add", "/api/v2/mapping/remove", "/api/v2/status", "/api/v2/commandline"} {
			a := send(t, h, m, p, "", nil)
			if a.code != 405 || a.hdr.Get("Allow") != "POST" || !strings.Contains(a.body["errormessage"].(string), "not allowed") {
				t.Fatalf("%s %s: %d Allow=%q %v; want 405 with Allow: POST", m, p, a.code, a.hdr.Get("Allow"), a.body)
			}
		}
	}
	if a := send(t, h, "GET", "/api/v2/nothing", "", nil); a.code != 404 {
		t.Fatalf("unknown route: %d", a.code)
	}
}

func TestAddContractNits(t *testing.T) {
	const base = `"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000`
	tests := []struct {
		name, mapping, mention string
	}{
		{"id all", `{` + base + `,"id":"all"}`, "reserved"},
		{"id ALL", `{` + base + `,"id":"ALL"}`, "reserved"},
		{"id zero width", `{` + base + `,"id":"ab\u200bc"}`, "U+200B"},
		{"id bidi override", `{` + base + `,"id":"\u202eexe.txt"}`, "U+202E"},
		{"id raw bidi", `{` + base + `,"id":"a` + "\u202e" + `b"}`, "U+202E"},
		{"id raw zero width", `{` + base + `,"id":"` + "\u200d" + `ab"}`, "U+200D"},
		{"id control", `{` + base + `,"id":"a\u0007b"}`, "U+0007"},
		{"id newline", `{` + base + `,"id":"a\nb"}`, "U+000A"},
		{"id bom", `{` + base + `,"id":"\ufeffx"}`, "U+FEFF"},
		{"duplicate type", `{"type":"private",` + base + `}`, `"type"`},
		{"duplicate escaped key", `{` + base + `,"\u0074ype":"public"}`, `"type"`},
		{"duplicate threshold", `{` + base + `,"heartbeatabsencethreshold":1}`, `"heartbeatabsencethreshold"`},
		{"duplicate unknown key", `{` + base + `,"x":1,"x":2}`, `"x"`},
		{"threshold 999", `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":999}`, "heartbeatabsencethreshold 999 ms is below the minimum of 1000 ms"},
		{"threshold 0", `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":0}`, "heartbeatabsencethreshold 0 ms"},
		{"port1 alias 5", `{"type":"public","maxconnections":60,"heartbeatabsencethresholdport1":5}`, "heartbeatabsencethresholdport1"},
		{"private port2 999", `{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":999}`, "heartbeatabsencethresholdport2"},
		{"idle negative", `{` + base + `,"idletimeout":-1}`, "idletimeout"},
		{"idle fraction", `{` + base + `,"idletimeout":1500.5}`, "idletimeout"},
		{"idle string", `{` + base + `,"idletimeout":"1500"}`, "idletimeout"},
		{"idle bool", `{` + base + `,"idletimeout":true}`, "idletimeout"},
		{"idle too small", `{` + base + `,"idletimeout":999}`, "idletimeout"},
		{"idle too large", `{` + base + `,"idletimeout":604800001}`, "idletimeout"},
		{"idle huge", `{` + base + `,"idletimeout":1e30}`, "idletimeout"},
		{"proxyprotocol v3", `{` + base + `,"proxyprotocol":"v3"}`, `proxyprotocol "v3" is not`},
		{"proxyprotocol upper case", `{` + base + `,"proxyprotocol":"V1"}`, `proxyprotocol "V1" is not`},
		{"proxyprotocol number", `{` + base + `,"proxyprotocol":1}`, "proxyprotocol must be a string"},
		{"proxyprotocol private", `{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":200000,"proxyprotocol":"v1"}`, "proxyprotocol is for public mappings only"},
		{"trailing object", `{` + base + `}{}`, "after the JSON object"},
		{"nested too deep", `{` + base + `,"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "nested"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeCore{}
			a := send(t, New(Config{Core: fc}).Handler(), "POST", "/api/v2/mapping/add", form("mapping", tt.mapping), nil)
			if a.code != 400 || !strings.Contains(a.body["errormessage"].(string), tt.mention) {
				t.Fatalf("got %d %v; want 400 mentioning %s", a.code, a.body, tt.mention)
			}
			if len(fc.adds) != 0 {
				t.Fatal("core was called")
			}
		})
	}
	t.Run("mapping field twice", func(t *testing.T) {
		fc := &fakeCore{}
		a := send(t, New(Config{Core: fc}).Handler(), "POST", "/api/v2/mapping/add", form("mapping", `{`+base+`}`, "mapping", `{`+base+`}`), nil)
		if a.code != 400 || !strings.Contains(a.body["errormessage"].(string), `"mapping" is given 2 times`) || len(fc.adds) != 0 {
			t.Fatalf("got %d %v", a.code, a.body)
		}
	})
}

func TestAddAcceptsLimitsAndIdleTimeout(t *testing.T) {
	for _, tt := range []struct {
		mapping string
		want    core.AddRequest
	}{
		{`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000}`,
			core.AddRequest{Type: "public", MaxConnections1: 1, Heartbeat1: time.Second}},
		{`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"idletimeout":1500,"id":"edge-1.ü"}`,
			core.AddRequest{Type: "public", MaxConnections1: 1, Heartbeat1: time.Second, IdleTimeout: 1500 * time.Millisecond, ID: "edge-1.ü"}},
		{`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"idletimeout":0}`,
			core.AddRequest{Type: "public", MaxConnections1: 1, Heartbeat1: time.Second}},
		{`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"idletimeout":null}`,
			core.AddRequest{Type: "public", MaxConnections1: 1, Heartbeat1: time.Second}},
		{`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"proxyprotocol":"v1"}`,
			core.AddRequest{Type: "public", MaxConnections1: 1, Heartbeat1: time.Second, ProxyProtocol: "v1"}},
		{`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"proxyprotocol":"v2"}`,
			core.AddRequest{Type: "public", MaxConnections1: 1, Heartbeat1: time.Second, ProxyProtocol: "v2"}},
		{`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":1000,"proxyprotocol":""}`,
			core.AddRequest{Type: "public", MaxConnections1: 1, Heartbeat1: time.Second}},
		{`{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":1000,"heartbeatabsencethresholdport2":1000,"proxyprotocol":null}`,
			core.AddRequest{Type: "private", MaxConnections1: 1, MaxConnections2: 1, Heartbeat1: time.Second, Heartbeat2: time.Second}},
		{`{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":2,"heartbeatabsencethresholdport1":1000,"heartbeatabsencethresholdport2":1000,"idletimeout":604800000}`,
			core.AddRequest{Type: "private", MaxConnections1: 1, MaxConnections2: 2, Heartbeat1: time.Second, Heartbeat2: time.Second, IdleTimeout: 7 * 24 * time.Hour}},
	} {
		fc := &fakeCore{}
		a := send(t, New(Config{Core: fc}).Handler(), "POST", "/api/v2/mapping/add", form("mapping", tt.mapping), nil)
		if a.code != 200 || len(fc.adds) != 1 || fc.adds[0] != tt.want {
			t.Fatalf("%s: %d %v %+v; want core to get %+v", tt.mapping, a.code, a.body, fc.adds, tt.want)
		}
	}
}

// statusCore reports one mapping with an idle timeout.
type statusCore struct{ fakeCore }

func (statusCore) Status(id string) (core.MappingStatus, error) {
	return core.MappingStatus{Mapping: core.Mapping{ID: id, Type: core.TypePublic, IdleTimeout: 1500 * time.Millisecond, ProxyProtocol: "v2"}}, nil
}

func TestStatusShowsIdleTimeout(t *testing.T) {
	a := send(t, New(Config{Core: &statusCore{}}).Handler(), "POST", "/api/v2/status", form("mappingid", "m"), nil)
	if a.code != 200 || a.body["idletimeout"] != 1500.0 || a.body["proxyprotocol"] != "v2" {
		t.Fatalf("status: %d %v", a.code, a.body)
	}
}

func TestErrorStatusesOfGuards(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", errUnauthorized), 401},
		{fmt.Errorf("x: %w", errCrossOrigin), 403},
		{fmt.Errorf("x: %w", errMethod), 405},
		{fmt.Errorf("x: %w", errNoRoute), 404},
	} {
		if got := errorStatus(tt.err); got != tt.want {
			t.Errorf("errorStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
