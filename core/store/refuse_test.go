package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// javaMapping renders a mapping exactly as the Java connector's
// saveConfiguration did (javax.json, keys in this order, no type or
// transport, no white space).
func javaMapping(id string, p1, p2, max1 int, pc1, pc2 string, hb1, hb2 int) string {
	return fmt.Sprintf(`{"id":%q,"port1":%d,"port2":%d,"maxconnectionsport1":%d,"maxconnectionsport2":%d,`+
		`"passcodeport1":%q,"passcodeport2":%q,"heartbeatabsencethresholdport1":%d,"heartbeatabsencethresholdport2":%d}`,
		id, p1, p2, max1, max1, pc1, pc2, hb1, hb2)
}

var (
	jmA = javaMapping("a", 7001, 7002, 60, "pa", "", 200000, 0)
	jmB = javaMapping("b", 7003, 7004, 1, "pb1", "pb2", 200000, 200000)
)

// snapshot returns the contents of every file in dir but the lock file.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if e.Name() == LockFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// refuse writes the given files into a fresh data dir, checks that Open
// fails with ErrCorrupt naming the file and every one of want, and that no
// file was written.
func refuse(t *testing.T, files map[string]string, named string, want ...string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, dir)
	s, _, err := Open(dir, Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open accepted %q", files)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, filepath.Join(dir, named)) {
		t.Fatalf("error %q does not name %s", msg, named)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("error %q does not say %q", msg, w)
		}
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused store was written:\nbefore %q\nafter  %q", before, after)
	}
}

// TestConfigsRefused: every damaged or unexpected configs.json stops Open,
// names the file and the offending key or mapping, and is left byte for
// byte.
func TestConfigsRefused(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		want          []string
	}{
		{"null", `null`, []string{"not a JSON object", "null"}},
		{"empty object", `{}`, []string{`no "mappings" key`}},
		{"misspelt key", `{"mapings":[` + jmA + `]}`, []string{`unknown top-level key "mapings"`}},
		{"unknown top-level key", `{"mappings":[` + jmA + `],"version":2}`, []string{`unknown top-level key "version"`}},
		{"case of mappings", `{"Mappings":[` + jmA + `]}`, []string{`unknown top-level key "Mappings"`}},
		{"mappings null", `{"mappings":null}`, []string{`"mappings" is null, want an array`}},
		{"mappings object", `{"mappings":{}}`, []string{`"mappings" is "{", want an array`}},
		{"array", `[` + jmA + `]`, []string{"not a JSON object"}},
		{"string", `"mappings"`, []string{"not a JSON object"}},
		{"empty", ``, []string{"empty"}},
		{"blank", " \n\t", []string{"empty"}},
		{"truncated", `{"mappings":[` + jmA[:40], []string{"unexpected end of JSON"}},
		{"trailing garbage", `{"mappings":[` + jmA + `]}xyz`, []string{"data after the JSON object"}},
		{"trailing comma", `{"mappings":[` + jmA + `]},`, []string{"data after the JSON object"}},
		{"second object", `{"mappings":[` + jmA + "]}\n" + `{"mappings":[]}`, []string{"a second JSON value"}},
		{"second array", `{"mappings":[]}[]`, []string{"a second JSON value"}},
		{"duplicate top-level key", `{"mappings":[` + jmA + `],"mappings":[]}`, []string{`key "mappings" appears twice`}},
		{"duplicate id", `{"mappings":[` + jmA + `,` + javaMapping("a", 7005, 7006, 60, "px", "", 0, 0) + `]}`,
			[]string{`mappings[1]`, `id "a" is stored twice`}},
		{"duplicate port", `{"mappings":[` + jmA + `,` + javaMapping("c", 7002, 7009, 60, "pc", "", 0, 0) + `]}`,
			[]string{`mappings[1] (id "c")`, `port 7002 is also used by mapping "a"`}},
		{"port1 is port2", `{"mappings":[` + javaMapping("c", 7009, 7009, 60, "pc", "", 0, 0) + `]}`,
			[]string{`mappings[0] (id "c")`, "port1 and port2 are both 7009"}},
		{"unknown mapping key", `{"mappings":[` + strings.Replace(jmB, `"passcodeport2"`, `"passcodport2"`, 1) + `]}`,
			[]string{`mappings[0] (id "b")`, `unknown key "passcodport2"`}},
		{"extra mapping key", `{"mappings":[` + strings.Replace(jmA, `{`, `{"comment":"x",`, 1) + `]}`,
			[]string{`mappings[0] (id "a")`, `unknown key "comment"`}},
		{"case of a mapping key", `{"mappings":[` + strings.Replace(jmA, `"port1"`, `"Port1"`, 1) + `]}`,
			[]string{`unknown key "Port1"`}},
		{"missing mapping key", `{"mappings":[` + strings.Replace(jmB, `"heartbeatabsencethresholdport2":200000`, `"type":"private"`, 1) + `]}`,
			[]string{`mappings[0] (id "b")`, `key "heartbeatabsencethresholdport2" is missing`}},
		{"duplicate mapping key", `{"mappings":[` + strings.Replace(jmA, `}`, `,"port1":7010}`, 1) + `]}`,
			[]string{`mappings[0] (id "a")`, `key "port1" appears twice`}},
		{"null value", `{"mappings":[` + strings.Replace(jmB, `"pb2"`, `null`, 1) + `]}`,
			[]string{`mappings[0] (id "b")`, "passcodeport2 is null"}},
		{"port as string", `{"mappings":[` + strings.Replace(jmA, `7001`, `"7001"`, 1) + `]}`,
			[]string{`mappings[0] (id "a")`, "port1"}},
		{"port as float", `{"mappings":[` + strings.Replace(jmA, `7001`, `7001.5`, 1) + `]}`,
			[]string{`mappings[0] (id "a")`, "port1"}},
		{"port out of range", `{"mappings":[` + strings.Replace(jmA, `7001`, `70001`, 1) + `]}`,
			[]string{`mappings[0] (id "a")`, "port1 70001 out of range"}},
		{"mapping null", `{"mappings":[null]}`, []string{"mappings[0]", "not a JSON object"}},
		{"empty id", `{"mappings":[` + strings.Replace(jmA, `"id":"a"`, `"id":""`, 1) + `]}`, []string{"mappings[0]", "id is empty"}},
		{"unknown type", `{"mappings":[` + strings.Replace(jmA, `{`, `{"type":"direct",`, 1) + `]}`, []string{`type "direct"`}},
		{"private without passcode2", `{"mappings":[` + strings.Replace(jmA, `{`, `{"type":"private",`, 1) + `]}`,
			[]string{"passcodeport2 of a private mapping is empty"}},
		{"negative maxconnections", `{"mappings":[` + strings.Replace(jmA, `"maxconnectionsport1":60`, `"maxconnectionsport1":-1`, 1) + `]}`,
			[]string{"maxconnections is negative"}},
		{"unknown proxyprotocol", `{"mappings":[` + strings.Replace(jmA, `{`, `{"proxyprotocol":"v3",`, 1) + `]}`,
			[]string{`mappings[0] (id "a")`, `proxyprotocol "v3" is not "v1" or "v2"`}},
		{"proxyprotocol not a string", `{"mappings":[` + strings.Replace(jmA, `{`, `{"proxyprotocol":2,`, 1) + `]}`,
			[]string{`mappings[0] (id "a")`, `proxyprotocol`}},
		{"proxyprotocol on a private mapping", `{"mappings":[` + strings.Replace(jmB, `{`, `{"proxyprotocol":"v1",`, 1) + `]}`,
			[]string{`mappings[0] (id "b")`, `proxyprotocol "v1" on a private mapping`}},
		{"not utf-8", "{\"mappings\":[" + strings.Replace(jmA, "pa", "p\xff", 1) + "]}", []string{"not valid UTF-8"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refuse(t, map[string]string{ConfigsFile: tt.content}, ConfigsFile, tt.want...)
		})
	}
}

// TestConfigsAccepted: what the Java connector wrote, what this package
// writes, and the empty store load, and load the same after compaction.
func TestConfigsAccepted(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		want          []string // ids
		public        []bool
	}{
		{"empty store", `{"mappings":[]}`, nil, nil},
		{"empty store, spaced", "{ \"mappings\" : [ ] }\n", nil, nil},
		{"java format", `{"mappings":[` + jmA + `,` + jmB + `]}`, []string{"a", "b"}, []bool{true, false}},
		{"with proxyprotocol", `{"mappings":[` + strings.Replace(jmA, `{`, `{"type":"public","proxyprotocol":"v2",`, 1) + `]}`,
			[]string{"a"}, []bool{true}},
		{"with type and transport", `{"mappings":[` + strings.Replace(jmB, `{`, `{"type":"private","transport":"yamux",`, 1) + `]}`,
			[]string{"b"}, []bool{false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ConfigsFile), []byte(tt.content), 0o600)
			s, got := open(t, dir)
			if len(got) != len(tt.want) {
				t.Fatalf("loaded %+v, want ids %v", got, tt.want)
			}
			for i, m := range got {
				if m.ID != tt.want[i] || m.IsPublic() != tt.public[i] {
					t.Fatalf("mapping %d = %+v, want id %s public=%v", i, m, tt.want[i], tt.public[i])
				}
			}
			s.Close()
			s2, again := open(t, dir)
			defer s2.Close()
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("after compaction: %+v, want %+v", again, got)
			}
		})
	}
}

func TestMissingStoreIsFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	s, got := open(t, dir)
	defer s.Close()
	if len(got) != 0 {
		t.Fatalf("fresh store holds %+v", got)
	}
}

// acked writes ms (adds) then removes into a store and "kills" it: the
// journal holds every change, configs.json none.
func acked(t *testing.T, dir string, ms []Mapping, removes ...string) {
	t.Helper()
	s, _ := open(t, dir)
	ctx := context.Background()
	for _, m := range ms {
		if err := s.Add(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range removes {
		if err := s.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	s.lock.Close() // as process death would
	s.journal.Close()
}

func readJournal(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ids(ms []Mapping) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestJournalRefused: damaged journals stop Open naming the journal and
// the record, and are left byte for byte.
func TestJournalRefused(t *testing.T) {
	dir := t.TempDir()
	acked(t, dir, []Mapping{mk(1), mk(2)}, mk(1).ID)
	good := string(readJournal(t, dir))
	lines := strings.SplitAfter(good, "\n") // 3 records and ""
	configs, _ := os.ReadFile(filepath.Join(dir, ConfigsFile))
	legacyLine := `{"op":"remove","id":"id-00002"}` + "\n"
	m3 := mk(3)
	m3.Port1 = mk(2).Port2
	clash, _ := encodeRecord(record{Op: opAdd, Mapping: &m3})
	strange := rawRecord
	for _, tt := range []struct {
		name, journal string
		want          []string
	}{
		{"checksum fails in the last record", lines[0] + lines[1] + strings.Replace(lines[2], "id-00001", "id-00007", 1),
			[]string{"record 3 ", "checksum mismatch"}},
		{"checksum fails in the first record", strings.Replace(lines[0], "pc1-1", "pc1-7", 1) + lines[1] + lines[2],
			[]string{"record 1 ", "checksum mismatch"}},
		{"last newline damaged", lines[0] + lines[1] + strings.TrimSuffix(lines[2], "\n") + "x",
			[]string{"record 3 ", "unterminated final record", "newline belongs"}},
		{"last record ends in a space", lines[0] + lines[1] + strings.TrimSuffix(lines[2], "\n") + " ",
			[]string{"record 3 ", "unterminated final record"}},
		{"newline lost between records", lines[0] + strings.TrimSuffix(lines[1], "\n") + lines[2],
			[]string{"record 2 ", "checksum mismatch"}},
		{"garbage line", lines[0] + "garbage\n" + lines[1], []string{"record 2 ", "does not start with a checksum"}},
		{"empty line", lines[0] + "\n" + lines[1], []string{"record 2 ", "empty record"}},
		{"garbage tail", good + "garbage", []string{"record 4 ", "unterminated final record"}},
		{"tail of a legacy record", good + `{"op":"rem`, []string{"record 4 ", "mixed"}},
		{"legacy line among checksummed", lines[0] + legacyLine + lines[1], []string{"record 2 ", "mixed"}},
		{"NUL in the middle of the tail", good + "0123\x00abc", []string{"record 4 ", "NUL"}},
		{"port used twice at the end", good + string(clash), []string{"id-00003", "port 1005", "id-00002", JournalFile + " record 4"}},
		{"unknown record key", good + strange(`{"op":"remove","id":"x","why":"y"}`), []string{"record 4 ", `unknown key "why"`}},
		{"remove without id", good + strange(`{"op":"remove"}`), []string{"record 4 ", `op "remove"`}},
		{"unknown op", good + strange(`{"op":"rename","id":"x"}`), []string{"record 4 ", `op "rename"`}},
		{"add with a bad mapping", good + strange(`{"op":"add","mapping":{"id":"x"}}`), []string{"record 4 ", "missing"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refuse(t, map[string]string{ConfigsFile: string(configs), JournalFile: tt.journal}, JournalFile, tt.want...)
		})
	}
}

// rawRecord renders js as a journal line with a valid checksum.
func rawRecord(js string) string {
	return fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(js), castagnoli), js)
}

// TestAckedRemoveWithDamagedRecordDoesNotComeBack: the acknowledged
// removal of a mapping is the last record; whether its bytes or its
// newline are damaged, Open refuses rather than bringing the mapping back.
func TestAckedRemoveWithDamagedRecordDoesNotComeBack(t *testing.T) {
	for _, damage := range []func(string) string{
		func(j string) string { return j[:len(j)-3] + "X" + j[len(j)-2:] },    // a byte of the id
		func(j string) string { return j[:len(j)-1] + "\x00" },                // the newline
		func(j string) string { return j[:len(j)-1] + "\r" },                  // the newline
		func(j string) string { return j[:len(j)-12] + "\n" + j[len(j)-11:] }, // a newline inside
	} {
		dir := t.TempDir()
		acked(t, dir, []Mapping{mk(1), mk(2)}, mk(1).ID)
		j := string(readJournal(t, dir))
		if err := os.WriteFile(filepath.Join(dir, JournalFile), []byte(damage(j)), 0o600); err != nil {
			t.Fatal(err)
		}
		s, got, err := Open(dir, Options{})
		if err == nil {
			s.Close()
			t.Fatalf("Open accepted a damaged acknowledged remove; mappings %v", ids(got))
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "record 3 ") {
			t.Fatalf("Open: %v, want ErrCorrupt naming record 3", err)
		}
	}
}

// TestEverySingleByteDamageIsCaught: in a journal of acknowledged records,
// any one byte changed (a bit flipped, or turned into a newline) is
// refused; nothing acknowledged is silently dropped or altered.
func TestEverySingleByteDamageIsCaught(t *testing.T) {
	dir := t.TempDir()
	acked(t, dir, []Mapping{mk(1), mk(2)}, mk(1).ID)
	good := readJournal(t, dir)
	for i := range good {
		for _, change := range []func(byte) byte{
			func(c byte) byte { return c ^ 0x01 },
			func(c byte) byte { return c ^ 0x80 },
			func(c byte) byte { return c ^ 0x20 },
			func(byte) byte { return '\n' },
			func(byte) byte { return 0 },
		} {
			b := bytes.Clone(good)
			if b[i] = change(b[i]); b[i] == good[i] {
				continue
			}
			if j, err := parseJournal(b); err == nil {
				t.Fatalf("byte %d changed %q -> %q: accepted, %d records", i, good[i], b[i], len(j.entries))
			}
		}
	}
}

// TestTornTailAtEveryCut: a journal cut anywhere inside its last record
// (a crash mid-append), possibly followed by NULs, loads with that record
// dropped and every earlier one kept; only the whole record but its
// newline followed by NULs is refused.
func TestTornTailAtEveryCut(t *testing.T) {
	dir := t.TempDir()
	acked(t, dir, []Mapping{mk(1), mk(2), mk(3)})
	good := readJournal(t, dir)
	last := bytes.LastIndexByte(good[:len(good)-1], '\n') + 1
	for cut := last; cut < len(good); cut++ {
		for _, pad := range []int{0, 1, 4096} {
			b := append(bytes.Clone(good[:cut]), make([]byte, pad)...)
			j, err := parseJournal(b)
			if cut == len(good)-1 && pad > 0 {
				// A whole record then NULs: the NUL may be its damaged
				// newline, so it may have been acknowledged.
				if err == nil {
					t.Fatalf("whole record followed by NULs accepted")
				}
				continue
			}
			if err != nil {
				t.Fatalf("cut at %d (+%d NULs): %v", cut, pad, err)
			}
			if len(j.entries) != 2 || j.entries[1].rec.Mapping.ID != mk(2).ID || j.good != int64(last) {
				t.Fatalf("cut at %d (+%d NULs): %d records, good %d", cut, pad, len(j.entries), j.good)
			}
		}
	}
	// Through Open: the record cut just before its newline is dropped too.
	if err := os.WriteFile(filepath.Join(dir, JournalFile), good[:len(good)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	s, got := open(t, dir)
	defer s.Close()
	if !reflect.DeepEqual(ids(got), []string{mk(1).ID, mk(2).ID}) {
		t.Fatalf("got %v", ids(got))
	}
}

// legacyJournal is a journal as the version before checksums wrote it.
func legacyJournal(recs ...record) string {
	var b strings.Builder
	for _, r := range recs {
		js, _ := json.Marshal(r)
		b.Write(js)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestLegacyJournalUpgrade: a journal left by the previous version (no
// checksums, say after a kill -9 before the upgrade) is replayed, its torn
// tail dropped as before, and compacted at once; the records written after
// are checksummed. Damage in it that parses is undetectable, as it was.
func TestLegacyJournalUpgrade(t *testing.T) {
	dir := t.TempDir()
	m1, m2 := mk(1), mk(2)
	old := legacyJournal(record{Op: opAdd, Mapping: &m1}, record{Op: opAdd, Mapping: &m2}, record{Op: opRemove, ID: m1.ID})
	os.WriteFile(filepath.Join(dir, ConfigsFile), []byte(`{"mappings":[`+jmA+`]}`), 0o600)
	os.WriteFile(filepath.Join(dir, JournalFile), []byte(old+`{"op":"add","mapping":{"id":"to`), 0o600)
	s, got := open(t, dir)
	if !reflect.DeepEqual(ids(got), []string{"a", m2.ID}) {
		t.Fatalf("upgrade loaded %v", ids(got))
	}
	if j := readJournal(t, dir); len(j) != 0 {
		t.Fatalf("legacy journal not compacted at Open: %q", j)
	}
	if err := s.Add(context.Background(), mk(3)); err != nil {
		t.Fatal(err)
	}
	j := readJournal(t, dir)
	if !isHex(j[:8]) || j[8] != ' ' {
		t.Fatalf("new record not checksummed: %q", j)
	}
	s.Close()
	s2, got := open(t, dir)
	defer s2.Close()
	if !reflect.DeepEqual(ids(got), []string{"a", m2.ID, mk(3).ID}) {
		t.Fatalf("after upgrade and restart: %v", ids(got))
	}
}

// TestJournalReplayedTwiceAfterCompactionCrash: a crash between writing
// configs.json and emptying the journal leaves both; replaying the journal
// onto the state it already produced passes through a state with a port
// used twice, and must still load.
func TestJournalReplayedTwiceAfterCompactionCrash(t *testing.T) {
	dir := t.TempDir()
	a, b := mk(1), mk(2)
	b.Port1, b.Port2 = a.Port1, a.Port2 // b reuses a's ports after a is removed
	s, _ := open(t, dir)
	ctx := context.Background()
	for _, err := range []error{s.Add(ctx, a), s.Remove(ctx, a.ID), s.Add(ctx, b)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.lock.Close()
	s.journal.Close()
	j := readJournal(t, dir)
	s, got := open(t, dir) // compacts
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, JournalFile), j, 0o600); err != nil { // as if never emptied
		t.Fatal(err)
	}
	s, again := open(t, dir)
	defer s.Close()
	if !reflect.DeepEqual(again, got) || len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("replayed twice: %v, first time %v", ids(again), ids(got))
	}
}

// TestAddRefusesPortInUse: the store never writes a state it would refuse
// to load: a mapping on a port another id holds is refused, a replacement
// of the same id may keep its ports.
func TestAddRefusesPortInUse(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	ctx := context.Background()
	a, b := mk(1), mk(2)
	b.Port2 = a.Port1
	if err := s.Add(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, b); err == nil || !strings.Contains(err.Error(), "port 1002") {
		t.Fatalf("Add on a port in use: %v", err)
	}
	bad := mk(9)
	bad.ID = "id-\xff"
	if err := s.Add(ctx, bad); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Add of an id that is not UTF-8: %v", err)
	}
	a.PasscodePort1 = "new"
	if err := s.Add(ctx, a); err != nil {
		t.Fatalf("replacing a mapping on its own ports: %v", err)
	}
	if err := s.Remove(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, b); err != nil {
		t.Fatalf("Add on a freed port: %v", err)
	}
	s.Close()
	s2, got := open(t, dir)
	defer s2.Close()
	if len(got) != 1 || got[0] != b {
		t.Fatalf("reopened %+v", got)
	}
}

// TestOverlayChecksWithinABatch: records of one batch are checked against
// each other as well as against the stored state.
func TestOverlayChecksWithinABatch(t *testing.T) {
	st := newState()
	a, b, c := mk(1), mk(2), mk(3)
	st.put(a)
	b.Port1 = a.Port2
	c.Port1 = b.Port2
	ov := newOverlay(st)
	if err := ov.apply(record{Op: opAdd, Mapping: &b}); err == nil {
		t.Fatal("overlay accepted a port of a stored mapping")
	}
	for _, rec := range []record{{Op: opRemove, ID: a.ID}, {Op: opAdd, Mapping: &b}} {
		if err := ov.apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := ov.apply(record{Op: opAdd, Mapping: &c}); err == nil {
		t.Fatal("overlay accepted a port taken earlier in the batch")
	}
	if len(st.mappings) != 1 || st.ports[a.Port2] != a.ID {
		t.Fatal("overlay changed the stored state")
	}
}

func TestNoSpaceErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG} {
		err := ioErr("journal append", &os.PathError{Op: "write", Path: "/d/" + JournalFile, Err: errno})
		if !errors.Is(err, ErrNoSpace) || !errors.Is(err, errno) || !strings.Contains(err.Error(), "no space left in the data dir") {
			t.Fatalf("%v: %v", errno, err)
		}
	}
	if err := ioErr("x", syscall.EIO); errors.Is(err, ErrNoSpace) {
		t.Fatalf("EIO classed as no space: %v", err)
	}
}

// TestResumeWhenCompactionFails: when the data dir is too full to compact
// at Open, the store appends to the journal as loaded, cut after its last
// complete record; a journal a failed compaction already emptied is taken
// as empty; any other size is an error.
func TestResumeWhenCompactionFails(t *testing.T) {
	dir := t.TempDir()
	acked(t, dir, []Mapping{mk(1), mk(2)})
	good := readJournal(t, dir)
	path := filepath.Join(dir, JournalFile)
	for _, tt := range []struct {
		name     string
		content  []byte
		wantSize int64
		wantErr  bool
	}{
		{"torn tail", append(bytes.Clone(good), "0123abcd {\"op\""...), int64(len(good)), false},
		{"emptied", nil, 0, false},
		{"changed", good[:10], 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j, err := parseJournal(append(bytes.Clone(good), "0123abcd {\"op\""...))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			s := &Store{dir: dir, st: newState()}
			err = s.resume(j)
			if tt.wantErr {
				if err == nil {
					s.journal.Close()
					t.Fatal("resume accepted a journal of another size")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.journal.Close()
			if s.size != tt.wantSize {
				t.Fatalf("size %d, want %d", s.size, tt.wantSize)
			}
			m := mk(3)
			line, _ := encodeRecord(record{Op: opAdd, Mapping: &m})
			if err := s.appendSync(line); err != nil {
				t.Fatal(err)
			}
			b := readJournal(t, dir)
			if jj, err := parseJournal(b); err != nil || jj.torn != 0 || int64(len(b)) != tt.wantSize+int64(len(line)) {
				t.Fatalf("journal after resume and append: %v, %q", err, b)
			}
		})
	}
}

// TestProxyProtocolKept: a stored proxyprotocol comes back after a reload
// and after compaction, and a mapping without one stores no key (so
// legacy readers see the file they know).
func TestProxyProtocolKept(t *testing.T) {
	dir := t.TempDir()
	content := `{"mappings":[` + strings.Replace(jmA, `{`, `{"type":"public","proxyprotocol":"v1",`, 1) + `,` + jmB + `]}`
	os.WriteFile(filepath.Join(dir, ConfigsFile), []byte(content), 0o600)
	s, got := open(t, dir)
	s.Close()
	s2, again := open(t, dir)
	s2.Close()
	for _, ms := range [][]Mapping{got, again} {
		if len(ms) != 2 || ms[0].ProxyProtocol != "v1" || ms[1].ProxyProtocol != "" {
			t.Fatalf("loaded %+v, want a's proxyprotocol v1 and b's none", ms)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, ConfigsFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"proxyprotocol"`); n != 1 {
		t.Fatalf("compacted file has %d proxyprotocol keys, want 1:\n%s", n, b)
	}
}
