package status

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core"
)

// sample returns a public mapping whose public port stopped accepting, a
// private one waiting for its first agent and a public one all well.
func sample() []core.MappingStatus {
	side := func(port int, active bool, links, idle int, failed int64, errText string) core.SideStatus {
		return core.SideStatus{Port: port, Active: active, Links: links, IdleLinks: idle, Streams: 2, Failed: failed, Error: errText, Restarts: 1}
	}
	return []core.MappingStatus{{
		Mapping: core.Mapping{ID: "pub", Type: core.TypePublic, Transport: "yamux", Port1: 7000, Port2: 7001,
			Passcode1: "secret1", IdleTimeout: 90 * time.Second, ProxyProtocol: "v2", MaxConnections1: 60, Heartbeat1: 200 * time.Second},
		Side1: side(7000, true, 4, 1, 3, ""), Side2: side(7001, false, 0, 0, 0, "accept: too many open files"),
		Active: 5, Total: 50, Refused: 7, BytesUp: 1 << 20, BytesDown: 3 << 30,
	}, {
		Mapping: core.Mapping{ID: "priv", Type: core.TypePrivate, Transport: "tcp", Port1: 7002, Port2: 7003,
			Passcode1: "secret1", Passcode2: "secret2", MaxConnections1: 1, MaxConnections2: 1},
		Side1: side(7002, false, 0, 0, 0, ""), Side2: side(7003, true, 1, 1, 9, ""),
	}, {
		Mapping: core.Mapping{ID: "ok", Type: core.TypePublic, Transport: "tcp", Port1: 7004, Port2: 7005},
		Side1:   side(7004, true, 1, 0, 0, ""), Side2: side(7005, true, 0, 0, 0, ""),
	}}
}

func printJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// TestRenderGolden pins every rendering of the composition: the status
// text and JSON without and with mappings, each mapping as show prints it
// and the list as ls prints it (testdata/render.golden was written by the
// renderers these replaced, in package main, so the CLI's output is
// unchanged byte for byte).
func TestRenderGolden(t *testing.T) {
	d := Daemon{Version: "9.9.9", PID: 42, Uptime: "3h25m8s", Dev: true, API: "127.0.0.1:8080", DataDir: "/var/x",
		Transport: "tcp", Transports: []string{"quic", "tcp", "yamux"}, FreePorts: 96, AgentLinks: 5, PublicConnections: 5,
		Mappings: []Row{}, Goroutines: 17}
	var b bytes.Buffer
	d.WriteText(&b)
	printJSON(&b, d)
	for _, st := range sample() {
		d.Mappings = append(d.Mappings, MappingOf(st).Row())
	}
	b.WriteString(d.Text())
	printJSON(&b, d)
	var list struct {
		Mappings []Mapping `json:"mappings"`
	}
	for _, st := range sample() {
		printJSON(&b, MappingOf(st))
		list.Mappings = append(list.Mappings, MappingOf(st).Public())
	}
	printJSON(&b, list)
	want, err := os.ReadFile("testdata/render.golden")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile("testdata/render.golden", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		want = b.Bytes()
	}
	if got := b.String(); got != string(want) {
		t.Fatalf("renderings differ from testdata/render.golden (UPDATE_GOLDEN=1 rewrites it):\n%s", got)
	}
}

func TestMappingStates(t *testing.T) {
	ms := sample()
	tests := []struct {
		name         string
		st           core.MappingStatus
		state, fault string
		down         string
	}{
		{"port error", ms[0], StateError, "port2 (7001): accept: too many open files", ""},
		{"private, no agent on port1", ms[1], StateWaiting, "", ""},
		{"ok", ms[2], StateOK, "", ""},
		{"public, no agent", core.MappingStatus{Mapping: core.Mapping{Type: core.TypePublic, Port1: 1, Port2: 2}, Side2: core.SideStatus{Active: true}}, StateWaiting, "", ""},
		{"private, no agent at all", core.MappingStatus{Mapping: core.Mapping{Type: core.TypePrivate, Port1: 1, Port2: 2}}, StateWaiting, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := MappingOf(tt.st)
			if m.State != tt.state || m.Fault() != tt.fault {
				t.Fatalf("state %q fault %q (problem %q), want %q %q", m.State, m.Fault(), m.Problem, tt.state, tt.fault)
			}
			if tt.state == StateWaiting && m.Problem == "" {
				t.Fatal("a waiting mapping says nothing about why")
			}
			if r := m.Row(); r.Down != tt.down || r.Error != tt.fault {
				t.Fatalf("row down %q error %q", r.Down, r.Error)
			}
		})
	}
	if got := MappingOf(ms[1]).Public(); got.Passcode1 != "" || got.Passcode2 != "" {
		t.Fatalf("Public kept passcodes: %+v", got)
	}
	if got := MappingOf(ms[1]); got.Passcode2 != "secret2" || got.IdleLinks() != 1 {
		t.Fatalf("MappingOf: %+v", got)
	}
}

type fakeSource struct{ list []core.MappingStatus }

func (f fakeSource) Summary() core.Summary {
	return core.Summary{Mappings: len(f.list), FreePorts: 9, AgentLinks: 6, PublicConns: 5, Started: time.Unix(100, 0)}
}
func (f fakeSource) List() []core.MappingStatus { return f.list }

func TestReporter(t *testing.T) {
	now := time.Unix(100, 0).Add(90*time.Minute + 1500*time.Millisecond)
	r := NewReporter(Info{Version: "1.2.3", Dev: true, API: ":8080", DataDir: "/d", Transport: "tcp", Transports: []string{"tcp"}},
		fakeSource{sample()}, func() time.Time { return now })
	sum := r.Summary()
	if want := (Summary{Version: "1.2.3", Uptime: 90*time.Minute + 2*time.Second, Mappings: 3, FreePorts: 9, AgentLinks: 6, PublicConnections: 5}); sum != want {
		t.Fatalf("Summary %+v, want %+v", sum, want)
	}
	d := r.Daemon()
	if d.Uptime != "1h30m2s" || d.PID != os.Getpid() || d.Goroutines < 1 || len(d.Mappings) != 3 || d.Mappings[0].ID != "pub" ||
		d.FreePorts != 9 || d.API != ":8080" || d.DataDir != "/d" || !d.Dev {
		t.Fatalf("Daemon %+v", d)
	}
	empty := NewReporter(Info{}, fakeSource{}, nil).Daemon()
	if empty.Mappings == nil {
		t.Fatal("no mappings must be [] in JSON, not null")
	}
}
