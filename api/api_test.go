package api

import (
	"context"
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

// fakeCore records calls; it is the API's own interface, not a network.
type fakeCore struct {
	adds    []core.AddRequest
	removed []string
	addErr  error
}

func (f *fakeCore) Add(_ context.Context, req core.AddRequest) (core.Mapping, error) {
	if f.addErr != nil {
		return core.Mapping{}, f.addErr
	}
	f.adds = append(f.adds, req)
	m := core.Mapping{ID: "id-1", Type: req.Type, Port1: 7001, Port2: 7002, Passcode1: "p1", Transport: "tcp"}
	if req.Type == core.TypePrivate {
		m.Passcode2 = "p2"
	}
	return m, nil
}

func (f *fakeCore) Remove(_ context.Context, id string) error {
	if id != "id-1" {
		return fmt.Errorf("%w: %s", core.ErrNotFound, id)
	}
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeCore) Status(id string) (core.MappingStatus, error) {
	if id != "id-1" {
		return core.MappingStatus{}, core.ErrNotFound
	}
	return core.MappingStatus{Mapping: core.Mapping{ID: id, Type: core.TypePublic}, Side1: core.SideStatus{Active: true, Links: 3}}, nil
}

func (f *fakeCore) Summary() core.Summary {
	return core.Summary{Mappings: 1, FreePorts: 98, Started: time.Unix(0, 0)}
}

func post(t *testing.T, h http.Handler, path string, form url.Values, remote string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if remote != "" {
		r.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s answered non-JSON %q", path, w.Body.String())
	}
	if _, ok := body["timestamp"].(float64); !ok {
		t.Fatalf("%s: no numeric timestamp in %v", path, body)
	}
	return w.Code, body
}

func TestAddBadInputs(t *testing.T) {
	tests := []struct {
		name, mapping, field string
	}{
		{"not json", `{`, "JSON object"},
		{"array", `[]`, "JSON object"},
		{"missing type", `{"maxconnections":1,"heartbeatabsencethreshold":200000}`, "type"},
		{"type not string", `{"type":1}`, "type"},
		{"unknown type", `{"type":"secret"}`, "type"},
		{"missing limit", `{"type":"public","heartbeatabsencethreshold":200000}`, "maxconnections"},
		{"limit as string", `{"type":"public","maxconnections":"60","heartbeatabsencethreshold":200000}`, "maxconnections"},
		{"limit fraction", `{"type":"public","maxconnections":1.5,"heartbeatabsencethreshold":200000}`, "maxconnections"},
		{"zero limit", `{"type":"public","maxconnections":0,"heartbeatabsencethreshold":200000}`, "maxconnections"},
		{"negative threshold", `{"type":"public","maxconnections":1,"heartbeatabsencethreshold":-5}`, "heartbeatabsencethreshold"},
		{"private missing port2", `{"type":"private","maxconnectionsport1":1,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":200000}`, "maxconnectionsport2"},
		{"id too long", `{"type":"public","maxconnections":1,"heartbeatabsencethreshold":200000,"id":"` + strings.Repeat("a", 200) + `"}`, "id"},
		{"id with space", `{"type":"public","maxconnections":1,"heartbeatabsencethreshold":200000,"id":"a b"}`, "id"},
		{"transport not string", `{"type":"public","maxconnections":1,"heartbeatabsencethreshold":200000,"transport":5}`, "transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeCore{}
			code, body := post(t, New(Config{Core: fc}).Handler(), "/api/v2/mapping/add", url.Values{"mapping": {tt.mapping}}, "")
			if code != 400 || body["status"] != "error" || !strings.Contains(fmt.Sprint(body["errormessage"]), tt.field) {
				t.Fatalf("got %d %v, want 400 naming %s", code, body, tt.field)
			}
			if len(fc.adds) != 0 {
				t.Fatal("core was called for a bad request")
			}
		})
	}
}

func TestAddOK(t *testing.T) {
	fc := &fakeCore{}
	h := New(Config{Core: fc}).Handler()
	code, body := post(t, h, "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"private","maxconnectionsport1":1, "maxconnectionsport2":1, "heartbeatabsencethresholdport1":200000, "heartbeatabsencethresholdport2":200000}`}}, "")
	if code != 200 || body["status"] != "ok" || body["port1"] != 7001.0 || body["passcode2"] != "p2" {
		t.Fatalf("got %d %v", code, body)
	}
	want := core.AddRequest{Type: "private", MaxConnections1: 1, MaxConnections2: 1, Heartbeat1: 200 * time.Second, Heartbeat2: 200 * time.Second}
	if len(fc.adds) != 1 || fc.adds[0] != want {
		t.Fatalf("core got %+v, want %+v", fc.adds, want)
	}
	code, body = post(t, h, "/api/v2/mapping/add", url.Values{"mapping": {`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"yamux"}`}}, "")
	if code != 200 || body["passcode2"] != "" || fc.adds[1].Transport != "yamux" || fc.adds[1].MaxConnections1 != 60 {
		t.Fatalf("got %d %v %+v", code, body, fc.adds[1])
	}
}

func TestErrorStatuses(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", core.ErrNoFreePort), 507},
		{fmt.Errorf("x: %w", core.ErrUnknownTransport), 400},
		{fmt.Errorf("x: %w", core.ErrDuplicate), 409},
		{fmt.Errorf("x: %w", core.ErrInvalid), 400},
		{fmt.Errorf("disk on fire"), 500},
	} {
		fc := &fakeCore{addErr: tt.err}
		code, body := post(t, New(Config{Core: fc}).Handler(), "/api/v2/mapping/add",
			url.Values{"mapping": {`{"type":"public","maxconnections":1,"heartbeatabsencethreshold":200000}`}}, "")
		if code != tt.want || body["errormessage"] == nil {
			t.Fatalf("%v: got %d %v, want %d", tt.err, code, body, tt.want)
		}
	}
}

func TestRemoveAndStatus(t *testing.T) {
	fc := &fakeCore{}
	h := New(Config{Core: fc, Version: "9.9"}).Handler()
	if code, _ := post(t, h, "/api/v2/mapping/remove", url.Values{}, ""); code != 400 {
		t.Fatalf("remove without id: %d", code)
	}
	if code, _ := post(t, h, "/api/v2/mapping/remove", url.Values{"mappingid": {"x"}}, ""); code != 404 {
		t.Fatalf("remove unknown: %d", code)
	}
	if code, body := post(t, h, "/api/v2/mapping/remove", url.Values{"mappingid": {"id-1"}}, ""); code != 200 || body["id"] != "id-1" {
		t.Fatalf("remove: %d %v", code, body)
	}
	code, body := post(t, h, "/api/v2/status", url.Values{"mappingid": {"all"}}, "")
	if code != 200 || body["status"] != "running" || body["mappings"] != 1.0 || body["availablePorts"] != 98.0 || body["version"] != "9.9" {
		t.Fatalf("status all: %d %v", code, body)
	}
	code, body = post(t, h, "/api/v2/status", url.Values{"mappingid": {"id-1"}}, "")
	if code != 200 || body["private"] != "Active" || body["public"] != "Inactive" || body["links"] != 3.0 {
		t.Fatalf("status id: %d %v", code, body)
	}
	if code, _ := post(t, h, "/api/v2/status", url.Values{"mappingid": {"nope"}}, ""); code != 404 {
		t.Fatalf("status unknown: %d", code)
	}
}

func TestBodyLimit(t *testing.T) {
	h := New(Config{Core: &fakeCore{}, MaxBodyBytes: 100}).Handler()
	code, _ := post(t, h, "/api/v2/mapping/add", url.Values{"mapping": {strings.Repeat("x", 1000)}}, "")
	if code != 413 {
		t.Fatalf("oversized body: %d, want 413", code)
	}
}

func TestCommandlineStopOnlyFromLoopback(t *testing.T) {
	var stops atomic.Int32
	stopped := make(chan struct{}, 4)
	h := New(Config{Core: &fakeCore{}, Version: "1.2.3", Stop: func() { stops.Add(1); stopped <- struct{}{} }}).Handler()
	code, body := post(t, h, "/api/v2/commandline", url.Values{"command": {"stop"}}, "192.0.2.7:5555")
	if code != 403 || body["errormessage"] == nil {
		t.Fatalf("remote stop: %d %v", code, body)
	}
	code, body = post(t, h, "/api/v2/commandline", url.Values{"command": {"version"}}, "192.0.2.7:5555")
	if code != 200 || body["response"] != "1.2.3" {
		t.Fatalf("version: %d %v", code, body)
	}
	if code, _ := post(t, h, "/api/v2/commandline", url.Values{"command": {"dance"}}, ""); code != 400 {
		t.Fatalf("unknown command: %d", code)
	}
	for _, remote := range []string{"127.0.0.1:40000", "[::1]:40000"} {
		code, body = post(t, h, "/api/v2/commandline", url.Values{"command": {"stop"}}, remote)
		if code != 200 || body["response"] != "stopping" {
			t.Fatalf("local stop from %s: %d %v", remote, code, body)
		}
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatal("Stop not called")
		}
	}
	if stops.Load() != 2 {
		t.Fatalf("Stop called %d times, want 2", stops.Load())
	}
}

func TestUnknownRouteIsJSON(t *testing.T) {
	h := New(Config{Core: &fakeCore{}}).Handler()
	if code, body := post(t, h, "/api/v1/nothing", url.Values{}, ""); code != 404 || body["status"] != "error" {
		t.Fatalf("got %d %v", code, body)
	}
}
