package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mk(i int) Mapping {
	return Mapping{
		ID: fmt.Sprintf("id-%05d", i), Port1: 1000 + 2*i, Port2: 1001 + 2*i,
		MaxConnections1: 60, MaxConnections2: 1,
		PasscodePort1: fmt.Sprintf("pc1-%d", i), PasscodePort2: fmt.Sprintf("pc2-%d", i),
		HeartbeatAbsenceThresholdPort1: 200000, Type: "private", Transport: "tcp",
	}
}

func open(t *testing.T, dir string) (*Store, []Mapping) {
	t.Helper()
	s, ms, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, ms
}

func TestAddRemoveSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, ms := open(t, dir)
	if len(ms) != 0 {
		t.Fatalf("fresh store has %d mappings", len(ms))
	}
	for i := range 5 {
		if err := s.Add(ctx, mk(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, "id-00002"); err != nil {
		t.Fatal(err)
	}
	// No Close: as after kill -9, only the journal holds the changes.
	s.lock.Close() // release flock as process death would
	s2, got := open(t, dir)
	defer s2.Close()
	want := []string{"id-00000", "id-00001", "id-00003", "id-00004"}
	if len(got) != len(want) {
		t.Fatalf("reopened %d mappings, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.ID != want[i] || m != mk(idx(m.ID)) {
			t.Fatalf("mapping %d = %+v, want %s unchanged", i, m, want[i])
		}
	}
	// configs.json is legacy-readable.
	b, err := os.ReadFile(filepath.Join(dir, ConfigsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"mappings"`, `"passcodeport1"`, `"heartbeatabsencethresholdport1"`, `"maxconnectionsport2"`} {
		if !contains(b, key) {
			t.Fatalf("configs.json lacks %s:\n%s", key, b)
		}
	}
}

func idx(id string) int {
	var i int
	fmt.Sscanf(id, "id-%05d", &i)
	return i
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func TestTornJournalTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	if err := s.Add(context.Background(), mk(1)); err != nil {
		t.Fatal(err)
	}
	s.lock.Close()
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Half of a checksummed record, as a crash mid-append leaves it.
	m := mk(2)
	line, err := encodeRecord(record{Op: opAdd, Mapping: &m})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(line[:len(line)/2])
	f.Close()
	s2, got := open(t, dir)
	defer s2.Close()
	if len(got) != 1 || got[0].ID != "id-00001" {
		t.Fatalf("got %+v, want only id-00001", got)
	}
}

func TestCorruptStoreStopsOpenAndIsKept(t *testing.T) {
	for _, tt := range []struct{ name, file, content string }{
		{"configs garbage", ConfigsFile, `{"mappings":[{"id":`},
		{"configs empty", ConfigsFile, ``},
		{"configs bad mapping", ConfigsFile, `{"mappings":[{"id":"x","port1":0}]}`},
		{"journal middle line", JournalFile, "garbage\n{\"op\":\"remove\",\"id\":\"x\"}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := Open(dir, Options{})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			b, _ := os.ReadFile(path)
			if string(b) != tt.content {
				t.Fatalf("corrupt file was rewritten: %q", b)
			}
		})
	}
}

func TestLegacyFileWithoutExtraFields(t *testing.T) {
	dir := t.TempDir()
	legacy := `{"mappings":[{"id":"a","port1":7001,"port2":7002,"maxconnectionsport1":60,"maxconnectionsport2":0,` +
		`"passcodeport1":"p1","passcodeport2":"","heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":0}]}`
	os.WriteFile(filepath.Join(dir, ConfigsFile), []byte(legacy), 0o600)
	s, got := open(t, dir)
	defer s.Close()
	if len(got) != 1 || !got[0].IsPublic() || got[0].Transport != "" || got[0].Port2 != 7002 {
		t.Fatalf("got %+v", got)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	defer s.Close()
	if _, _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestCompactionKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(dir, Options{CompactAfter: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		if err := s.Add(ctx, mk(i)); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			if err := s.Remove(ctx, mk(i/2).ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, _ := os.Stat(filepath.Join(dir, JournalFile))
	if st.Size() > 7*400 {
		t.Fatalf("journal not compacted: %d bytes", st.Size())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, mk(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
	s2, got := open(t, dir)
	defer s2.Close()
	removed := map[string]bool{}
	for i := 0; i < 50; i += 5 {
		removed[mk(i/2).ID] = true
	}
	want := 0
	for i := range 50 {
		if !removed[mk(i).ID] {
			want++
		}
	}
	// id-00000 is removed at i=0 then never re-added; others removed after add.
	if len(got) != want {
		t.Fatalf("reopened %d mappings, want %d", len(got), want)
	}
}

func TestConcurrentAddsShareFsync(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := s.Add(ctx, mk(w*100+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	s2, got := open(t, dir)
	defer s2.Close()
	if len(got) != 800 {
		t.Fatalf("reopened %d, want 800", len(got))
	}
}

// BenchmarkDurableAdd measures durable adds from 8 concurrent clients on a
// store already holding 10,000 mappings.
func BenchmarkDurableAdd(b *testing.B) {
	dir := b.TempDir()
	s, _, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10000 {
		if err := s.Add(ctx, mk(i)); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	s, _, err = Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	next := 10000
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			next++
			i := next
			mu.Unlock()
			if err := s.Add(ctx, mk(i%30000)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
