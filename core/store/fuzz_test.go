package store

import (
	"reflect"
	"testing"
)

// The seed corpora are in testdata/fuzz/FuzzLoadConfigs and
// testdata/fuzz/FuzzLoadJournal: Java-written and Go-written files, each
// refusal case, journals of both formats with torn tails.

// FuzzLoadConfigs: loading configs.json never panics, and whatever loads
// re-serialises and reloads to the same mappings.
func FuzzLoadConfigs(f *testing.F) {
	f.Add([]byte(`{"mappings":[]}`))
	f.Add([]byte(`{"mappings":[` + jmA + `,` + jmB + `]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := decodeConfigs(data)
		if err != nil {
			return
		}
		b, err := encodeConfigs(ms)
		if err != nil {
			t.Fatalf("encode %+v: %v", ms, err)
		}
		again, err := decodeConfigs(b)
		if err != nil {
			t.Fatalf("re-serialised store refused: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(again, ms) {
			t.Fatalf("reloaded %+v, want %+v", again, ms)
		}
		// Through loadState too, as Open does, with an empty journal.
		st, _, err := loadState("c", data, true, "j", nil)
		if err != nil {
			t.Fatalf("loadState refused what decodeConfigs took: %v", err)
		}
		if got := st.list(); !reflect.DeepEqual(got, ms) {
			t.Fatalf("loadState %+v, decodeConfigs %+v", got, ms)
		}
	})
}

// FuzzLoadJournal: replaying a journal never panics, and whatever loads
// re-serialises (as configs.json, and as a journal in the current format)
// and reloads to the same mappings.
func FuzzLoadJournal(f *testing.F) {
	a, b := mk(1), mk(2)
	var j []byte
	for _, rec := range []record{{Op: opAdd, Mapping: &a}, {Op: opAdd, Mapping: &b}, {Op: opRemove, ID: a.ID}} {
		line, _ := encodeRecord(rec)
		j = append(j, line...)
	}
	f.Add(j)
	f.Add(j[:len(j)-7])
	f.Fuzz(func(t *testing.T, data []byte) {
		st, jr, err := loadState("c", nil, false, "j", data)
		if err != nil {
			return
		}
		ms := st.list()
		cb, err := encodeConfigs(ms)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeConfigs(cb)
		if err != nil {
			t.Fatalf("state of a loaded journal refused as configs.json: %v\n%s", err, cb)
		}
		if !reflect.DeepEqual(again, ms) {
			t.Fatalf("reloaded %+v, want %+v", again, ms)
		}
		var rewritten []byte
		for _, e := range jr.entries {
			line, err := encodeRecord(e.rec)
			if err != nil {
				t.Fatal(err)
			}
			rewritten = append(rewritten, line...)
		}
		st2, jr2, err := loadState("c", nil, false, "j", rewritten)
		if err != nil {
			t.Fatalf("re-serialised journal refused: %v\n%s", err, rewritten)
		}
		if got := st2.list(); !reflect.DeepEqual(got, ms) || len(jr2.entries) != len(jr.entries) || jr2.torn != 0 {
			t.Fatalf("re-serialised journal loads %+v, want %+v", got, ms)
		}
	})
}
