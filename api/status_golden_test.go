package api

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
)

// goldenCore answers Status with every field a status answer renders.
type goldenCore struct{ fakeCore }

func (goldenCore) Status(id string) (core.MappingStatus, error) {
	side := func(port int, active bool, links, idle int, failed int64, errText string) core.SideStatus {
		return core.SideStatus{Port: port, Active: active, Links: links, IdleLinks: idle, Streams: 2, Failed: failed, Error: errText, Restarts: 1}
	}
	switch id {
	case "pub":
		return core.MappingStatus{
			Mapping: core.Mapping{ID: id, Type: core.TypePublic, Transport: "yamux", Port1: 7000, Port2: 7001,
				Passcode1: "secret1", IdleTimeout: 90 * time.Second, ProxyProtocol: "v2"},
			Side1: side(7000, true, 4, 1, 3, ""), Side2: side(7001, false, 0, 0, 0, "accept: too many open files"),
			Active: 5, Total: 50, Refused: 7, BytesUp: 1 << 20, BytesDown: 3 << 30,
		}, nil
	case "priv":
		return core.MappingStatus{
			Mapping: core.Mapping{ID: id, Type: core.TypePrivate, Transport: "tcp", Port1: 7002, Port2: 7003,
				Passcode1: "secret1", Passcode2: "secret2"},
			Side1: side(7002, false, 0, 0, 0, ""), Side2: side(7003, true, 1, 1, 9, ""),
		}, nil
	}
	return core.MappingStatus{}, fmt.Errorf("%w: %s", core.ErrNotFound, id)
}

func (goldenCore) Summary() core.Summary {
	return core.Summary{Mappings: 2, PublicMappings: 1, FreePorts: 96, AgentLinks: 5, PublicConns: 5, Started: time.Unix(1000, 0)}
}

// TestStatusAnswersGolden pins the bytes of every status answer (the
// ioFog Controller's contract, docs/ioFog-contract.md): keys, values and
// their order, for status all, a public and a private mapping, and
// commandline status without a daemon status.
func TestStatusAnswersGolden(t *testing.T) {
	now := time.Unix(1000, 0).Add(3*time.Hour + 25*time.Minute + 7*time.Second + 600*time.Millisecond)
	h := New(Config{Core: &goldenCore{}, Version: "9.9.9", Now: func() time.Time { return now }}).Handler()
	tests := []struct{ path, field, value, want string }{
		{"/api/v2/status", "mappingid", "all",
			`{"agentLinks":5,"availablePorts":96,"id":"all","mappings":2,"publicConnections":5,"status":"running","timestamp":13307600,"uptime":"3h25m8s","version":"9.9.9"}`},
		{"/api/v2/status", "mappingid", "pub",
			`{"bytesDown":3221225472,"bytesUp":1048576,"connections":5,"error":"port2 (7001): accept: too many open files","failedHandshakes":3,"id":"pub","idleLinks":1,"idletimeout":90000,"links":4,"port1":7000,"port2":7001,"private":"Active","proxyprotocol":"v2","public":"Inactive","refusedConnections":7,"status":"ok","timestamp":13307600,"totalConnections":50,"transport":"yamux","type":"public"}`},
		{"/api/v2/status", "mappingid", "priv",
			`{"bytesDown":0,"bytesUp":0,"connections":0,"failedHandshakes":9,"id":"priv","idleLinks":1,"idletimeout":0,"links":1,"port1":7002,"port2":7003,"private1":"Inactive","private2":"Active","proxyprotocol":"","refusedConnections":0,"status":"ok","timestamp":13307600,"totalConnections":0,"transport":"tcp","type":"private"}`},
		{"/api/v2/commandline", "command", "status",
			`{"response":"running; 2 mappings; 96 available ports","timestamp":13307600}`},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", tt.path, strings.NewReader(url.Values{tt.field: {tt.value}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r = r.WithContext(context.Background())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := strings.TrimSpace(w.Body.String()); w.Code != 200 || got != tt.want {
			t.Errorf("%s %s=%s: %d\n got %s\nwant %s", tt.path, tt.field, tt.value, w.Code, got, tt.want)
		}
	}
}

// TestCommandlineStatusIsTheDaemonStatus: with a daemon status, commandline
// status answers its text, the one `iofog-connector status` prints.
func TestCommandlineStatusIsTheDaemonStatus(t *testing.T) {
	d := status.Daemon{Version: "9.9.9", PID: 7, Uptime: "1s", Transport: "tcp", Transports: []string{"tcp"},
		Mappings: []status.Row{{ID: "m1", Type: "public", Transport: "tcp", Port1: 1, Port2: 2, State1: "Active", State2: "Active"}}}
	h := New(Config{Core: &goldenCore{}, Status: func() status.Daemon { return d }}).Handler()
	code, body := post(t, h, "/api/v2/commandline", url.Values{"command": {"status"}}, "")
	if code != 200 || body["response"] != d.Text() || !strings.Contains(d.Text(), "m1") {
		t.Fatalf("commandline status: %d %v", code, body)
	}
}
