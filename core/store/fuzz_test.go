package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// sameSplit checks that the fast scan of valid JSON splits objects and
// arrays as json.Decoder's tokens do.
func sameSplit(t *testing.T, data []byte) {
	if !json.Valid(data) || !utf8.Valid(data) {
		return
	}
	fast, ferr := scanMembers(data)
	slow, serr := tokenMembers(data)
	if (ferr == nil) != (serr == nil) || len(fast) != len(slow) {
		t.Fatalf("members: scan %v %d, tokens %v %d", ferr, len(fast), serr, len(slow))
	}
	for i := range fast {
		if fast[i].key != slow[i].key || !bytes.Equal(fast[i].val, slow[i].val) {
			t.Fatalf("member %d: scan %q=%s, tokens %q=%s", i, fast[i].key, fast[i].val, slow[i].key, slow[i].val)
		}
	}
	fe, ferr := elements(data)
	se, serr := tokenElements(data)
	if (ferr == nil) != (serr == nil) || len(fe) != len(se) {
		t.Fatalf("elements: scan %v %d, tokens %v %d", ferr, len(fe), serr, len(se))
	}
	for i := range fe {
		if !bytes.Equal(fe[i], se[i]) {
			t.Fatalf("element %d: scan %s, tokens %s", i, fe[i], se[i])
		}
	}
}

// The seed corpora are in testdata/fuzz/FuzzLoadConfigs and
// testdata/fuzz/FuzzLoadJournal: Java-written and Go-written files, each
// refusal case, journals of both formats with torn tails.

// FuzzLoadConfigs: loading configs.json never panics, and whatever loads
// re-serialises and reloads to the same mappings.
func FuzzLoadConfigs(f *testing.F) {
	f.Add([]byte(`{"mappings":[]}`))
	f.Add([]byte(`{"mappings":[` + jmA + `,` + jmB + `]}`))
	f.Add([]byte(` { "a\"b" : [1, {"x":"}\""}], "\u0063" : -1.5e3 , "d":true } `))
	f.Add([]byte(` [ 1 , "a" , {} , [ ] , null ] `))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameSplit(t, data)
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

// BenchmarkDecodeConfigs decodes a configs.json of 10,000 mappings, the
// start-up target's size.
func BenchmarkDecodeConfigs(b *testing.B) {
	ms := make([]Mapping, 0, 10000)
	for i := range 10000 {
		m := mk(i)
		m.Port1, m.Port2 = 1+2*i, 2+2*i
		ms = append(ms, m)
	}
	data, err := encodeConfigs(ms)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := decodeConfigs(data); err != nil {
			b.Fatal(err)
		}
	}
}
