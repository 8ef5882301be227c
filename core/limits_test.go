package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

func TestCheckID(t *testing.T) {
	for _, tt := range []struct {
		id   string
		ok   bool
		want string
	}{
		{"4a1f0d1c-0000-4000-8000-000000000000", true, ""},
		{"edge_1.camera~ü", true, ""},
		{"", false, "empty"},
		{"all", false, "reserved"},
		{"ALL", false, "reserved"},
		{strings.Repeat("a", MaxIDLength+1), false, "longer"},
		{"a b", false, "U+0020"},
		{"a\u00a0b", false, "U+00A0"},       // no-break space
		{"ab\u200bc", false, "U+200B"},      // zero-width space
		{"\u202eabc", false, "U+202E"},      // right-to-left override
		{"abc\u2066", false, "U+2066"},      // left-to-right isolate
		{"\ufeffabc", false, "U+FEFF"},      // byte order mark
		{"a\x01", false, "U+0001"},          // control
		{"a\u0085", false, "U+0085"},        // C1 control
		{"a\ue000", false, "U+E000"},        // private use
		{"a\xffb", false, "UTF-8"},          // invalid encoding
		{"a\u2028b", false, "U+2028"},       // line separator
		{"\U000e0041bc", false, "U+E0041"},  // tag character (Cf)
		{"ok\u0301", true, ""},              // combining mark is printable
		{strings.Repeat("é", 64), true, ""}, // 128 bytes
		{strings.Repeat("é", 64) + "x", false, "longer"},
	} {
		err := CheckID(tt.id)
		if tt.ok != (err == nil) {
			t.Errorf("CheckID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			continue
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "id")) {
			t.Errorf("CheckID(%q) = %v, want ErrInvalid naming id and %q", tt.id, err, tt.want)
		}
	}
}

func TestAddLimits(t *testing.T) {
	f := newFixture(t, t.TempDir(), freePorts(t, 8))
	pub := func(mod func(*AddRequest)) AddRequest {
		r := AddRequest{Type: TypePublic, MaxConnections1: 1, Heartbeat1: 20 * time.Second}
		mod(&r)
		return r
	}
	for _, tt := range []struct {
		name  string
		req   AddRequest
		field string
	}{
		{"threshold 999ms", pub(func(r *AddRequest) { r.Heartbeat1 = 999 * time.Millisecond }), "heartbeatabsencethreshold 999 ms"},
		{"threshold 1ms", pub(func(r *AddRequest) { r.Heartbeat1 = time.Millisecond }), "heartbeatabsencethreshold"},
		{"private port2 threshold", AddRequest{Type: TypePrivate, MaxConnections1: 1, MaxConnections2: 1, Heartbeat1: time.Minute, Heartbeat2: 500 * time.Millisecond}, "heartbeatabsencethresholdport2"},
		{"private port1 threshold", AddRequest{Type: TypePrivate, MaxConnections1: 1, MaxConnections2: 1, Heartbeat1: 10 * time.Millisecond}, "heartbeatabsencethresholdport1"},
		{"negative idle", pub(func(r *AddRequest) { r.IdleTimeout = -time.Second }), "idletimeout"},
		{"idle too small", pub(func(r *AddRequest) { r.IdleTimeout = 999 * time.Millisecond }), "idletimeout"},
		{"idle too large", pub(func(r *AddRequest) { r.IdleTimeout = MaxIdleTimeout + time.Millisecond }), "idletimeout"},
		{"id all", pub(func(r *AddRequest) { r.ID = "all" }), "id"},
		{"id zero width", pub(func(r *AddRequest) { r.ID = "a\u200b" }), "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.m.Add(ctx(t), tt.req)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Add = %v, want ErrInvalid naming %q", err, tt.field)
			}
		})
	}
	if f.alloc.Free() != 8 || len(f.m.List()) != 0 {
		t.Fatalf("refused adds changed state: free %d, mappings %d", f.alloc.Free(), len(f.m.List()))
	}
	for _, req := range []AddRequest{
		pub(func(r *AddRequest) { r.Heartbeat1 = MinHeartbeatThreshold; r.IdleTimeout = MinIdleTimeout }),
		pub(func(r *AddRequest) { r.Heartbeat1 = 0; r.IdleTimeout = MaxIdleTimeout; r.ID = "edge-1" }),
		{Type: TypePrivate, MaxConnections1: 1, MaxConnections2: 1, Heartbeat1: time.Second, Heartbeat2: time.Second},
	} {
		if _, err := f.m.Add(ctx(t), req); err != nil {
			t.Fatalf("Add(%+v) = %v", req, err)
		}
	}
}

// TestIdleTimeoutStoredAndRestored: the idle timeout is stored as
// "idletimeout" (ms), omitted when off so legacy files look the same, and
// restored on start.
func TestIdleTimeoutStoredAndRestored(t *testing.T) {
	dir := t.TempDir()
	pool := freePorts(t, 4)
	f := newFixture(t, dir, pool)
	with, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1, IdleTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	without, err := f.m.Add(ctx(t), AddRequest{Type: TypePrivate, MaxConnections1: 1, MaxConnections2: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.close()
	f2 := newFixture(t, dir, pool) // compacts into configs.json
	st, err := f2.m.Status(with.ID)
	if err != nil || st.IdleTimeout != 1500*time.Millisecond {
		t.Fatalf("restored idle timeout %v, %v; want 1.5s", st.IdleTimeout, err)
	}
	if st, _ := f2.m.Status(without.ID); st.IdleTimeout != 0 {
		t.Fatalf("restored idle timeout %v for a mapping without one", st.IdleTimeout)
	}
	b, err := os.ReadFile(filepath.Join(dir, store.ConfigsFile))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Mappings []map[string]any }
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	for _, m := range file.Mappings {
		v, ok := m["idletimeout"]
		switch m["id"] {
		case with.ID:
			if v != 1500.0 {
				t.Fatalf("stored idletimeout %v, want 1500:\n%s", v, b)
			}
		case without.ID:
			if ok {
				t.Fatalf("idletimeout stored for a mapping without one:\n%s", b)
			}
		}
	}
}

// syncBuffer is a log sink for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRestoreClampsStoredThresholds: a mapping stored by an older version
// with a threshold below the minimum is reopened at the minimum with a
// warning, and its stored record is not changed.
func TestRestoreClampsStoredThresholds(t *testing.T) {
	dir := t.TempDir()
	pool := freePorts(t, 4)
	st, _, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	legacy := store.Mapping{
		ID: "legacy-1", Port1: pool[0], Port2: pool[1], MaxConnections1: 1, MaxConnections2: 1,
		PasscodePort1: "p1", PasscodePort2: "p2", HeartbeatAbsenceThresholdPort1: 1, HeartbeatAbsenceThresholdPort2: 200000,
		IdleTimeout: 5,
	}
	if err := st.Add(context.Background(), legacy); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, stored, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := &syncBuffer{}
	tr := &listenTransport{}
	m, err := New(Config{
		BindHost: "127.0.0.1", Ports: ports.New(pool), Store: st,
		Transports: map[string]sdk.Transport{"test": tr}, DefaultTransport: "test",
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Restore(ctx(t), stored); err != nil {
		t.Fatal(err)
	}
	got, err := m.Status("legacy-1")
	if err != nil || got.Down() != "" {
		t.Fatalf("status %+v %v", got, err)
	}
	if got.Heartbeat1 != MinHeartbeatThreshold || got.Heartbeat2 != 200*time.Second || got.IdleTimeout != MinIdleTimeout {
		t.Fatalf("restored %v/%v idle %v; want the minimum, 200s and the minimum", got.Heartbeat1, got.Heartbeat2, got.IdleTimeout)
	}
	tr.mu.Lock()
	th := tr.cfgs["127.0.0.1:"+strconv.Itoa(pool[0])].HeartbeatThreshold
	tr.mu.Unlock()
	if th != MinHeartbeatThreshold {
		t.Fatalf("endpoint opened with threshold %v, want %v", th, MinHeartbeatThreshold)
	}
	for _, want := range []string{"level=WARN", "heartbeatabsencethresholdport1", "stored_ms=1 ", "used_ms=1000", "idletimeout"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("logs lack %q:\n%s", want, logs.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, store.ConfigsFile))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Mappings []store.Mapping }
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Mappings) != 1 || file.Mappings[0] != legacy {
		t.Fatalf("stored mapping changed:\n%s", b)
	}
}
