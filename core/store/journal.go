package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
)

// Journal records. Each is one line:
//
//	cccccccc {"op":"add","mapping":{...}}\n
//
// where cccccccc is the CRC-32C (Castagnoli) of the JSON, in eight
// lowercase hex digits. The newline ends the record; a record is
// acknowledged only after its newline is fsync'd.
//
// Journals written before checksums existed hold the bare JSON lines
// ({"op":...}\n). Such a journal is still replayed, once, as it was before:
// Open compacts it into configs.json and empties it, so the new format is
// never appended to an old one, and a journal mixing both is damage.
const (
	opAdd    = "add"
	opRemove = "remove"
)

// castagnoli is the CRC-32C table; it is never written after init.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord renders rec as one journal line.
func encodeRecord(rec record) ([]byte, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("store: encode: %w", err)
	}
	line := make([]byte, 0, len(js)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(js, castagnoli))
	line = append(line, js...)
	return append(line, '\n'), nil
}

// format of a journal's records.
type format int

const (
	formatUnknown     format = iota // no record seen yet
	formatChecksummed               // this version's
	formatLegacy                    // older versions', without checksum
)

// entry is one complete journal record.
type entry struct {
	rec record
	n   int   // record number, from 1
	off int64 // byte offset of the record
}

// journal is a parsed journal.
type journal struct {
	entries []entry
	format  format
	good    int64 // bytes up to the end of the last complete record
	torn    int   // bytes of the unterminated final record, dropped
}

// journalError locates damage in a journal.
type journalError struct {
	n   int   // record number, from 1
	off int64 // byte offset of the record
	err error
}

func (e *journalError) Error() string {
	return fmt.Sprintf("record %d (byte %d): %v", e.n, e.off, e.err)
}

// parseJournal parses a journal. Only an unterminated final record (no
// newline: its write never finished, so it was never acknowledged) is
// dropped, and only if it is a prefix of a valid record, possibly followed
// by NUL bytes (a file extended by a crash before its data was written).
// Every other defect is an error naming the record: a complete record
// failing its checksum or not parsing, an empty line, a final fragment
// that cannot be the start of a record, a mix of formats.
func parseJournal(b []byte) (journal, error) {
	var j journal
	off, n := 0, 0
	for {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			break
		}
		n++
		rec, f, err := decodeLine(b[off : off+i])
		if err == nil {
			err = j.sameFormat(f)
		}
		if err != nil {
			return journal{}, &journalError{n: n, off: int64(off), err: err}
		}
		j.entries = append(j.entries, entry{rec: rec, n: n, off: int64(off)})
		off += i + 1
	}
	j.good = int64(off)
	if tail := b[off:]; len(tail) > 0 {
		f, err := tornTail(tail)
		if err == nil {
			err = j.sameFormat(f)
		}
		if err != nil {
			return journal{}, &journalError{n: n + 1, off: int64(off), err: fmt.Errorf("unterminated final record: %w", err)}
		}
		j.torn = len(tail)
	}
	return j, nil
}

func (j *journal) sameFormat(f format) error {
	switch {
	case f == formatUnknown:
	case j.format == formatUnknown:
		j.format = f
	case f != j.format:
		return errors.New("checksummed and unchecksummed records mixed in one journal")
	}
	return nil
}

// decodeLine parses one complete record (without its newline).
func decodeLine(line []byte) (record, format, error) {
	if len(line) == 0 {
		return record{}, formatUnknown, errors.New("empty record")
	}
	if line[0] == '{' {
		rec, err := decodeRecord(line)
		return rec, formatLegacy, err
	}
	if len(line) < 10 || !isHex(line[:8]) || line[8] != ' ' {
		return record{}, formatChecksummed, errors.New("does not start with a checksum")
	}
	js := line[9:]
	if err := verify(line[:8], js); err != nil {
		return record{}, formatChecksummed, err
	}
	rec, err := decodeRecord(js)
	return rec, formatChecksummed, err
}

func verify(sum, js []byte) error {
	want, _ := strconv.ParseUint(string(sum), 16, 32)
	if got := crc32.Checksum(js, castagnoli); uint32(want) != got {
		return fmt.Errorf("checksum mismatch (stored %s, computed %08x)", sum, got)
	}
	return nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// tornTail checks that tail, the bytes after the last newline, is what an
// interrupted append leaves: a prefix of a record, then possibly NULs.
//
// A complete record followed by NULs is refused: its newline may be what
// was damaged, and the record may have been acknowledged.
func tornTail(tail []byte) (format, error) {
	t := bytes.TrimRight(tail, "\x00")
	padded := len(t) < len(tail)
	switch {
	case len(t) == 0:
		return formatUnknown, nil
	case bytes.IndexByte(t, 0) >= 0:
		return formatUnknown, errors.New("holds NUL bytes")
	case t[0] == '{':
		complete, err := jsonPrefix(t)
		if err == nil && complete && padded {
			err = errors.New("a complete record followed by NUL bytes")
		}
		return formatLegacy, err
	}
	sum := t[:min(8, len(t))]
	if !isHex(sum) {
		return formatChecksummed, errors.New("does not start with a checksum")
	}
	if len(t) <= 8 {
		return formatChecksummed, nil
	}
	if t[8] != ' ' || len(t) > 9 && t[9] != '{' {
		return formatChecksummed, errors.New("is not a record")
	}
	js := t[9:]
	complete, err := jsonPrefix(js)
	switch {
	case err != nil || !complete:
	case padded:
		err = errors.New("a complete record followed by NUL bytes")
	default:
		// Everything but the newline was written. It was still never
		// acknowledged, but its bytes must be intact.
		err = verify(sum, js)
	}
	return formatChecksummed, err
}

// jsonPrefix reports whether b is one complete JSON value and nothing
// more (true), a proper prefix of one (false), or neither (error).
func jsonPrefix(b []byte) (bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	switch err := dec.Decode(&raw); {
	case err == nil:
		if dec.InputOffset() != int64(len(b)) {
			return true, errors.New("bytes after the end of the record where its newline belongs")
		}
		return true, nil
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return false, nil
	default:
		return false, err
	}
}

// decodeRecord parses a record's JSON strictly: "op" is "add" with a
// "mapping" or "remove" with a non-empty "id", and nothing else.
func decodeRecord(js []byte) (record, error) {
	mbs, err := members(js)
	if err != nil {
		return record{}, err
	}
	var rec record
	has := map[string]bool{}
	for _, mb := range mbs {
		has[mb.key] = true
		switch mb.key {
		case "op":
			err = json.Unmarshal(mb.val, &rec.Op)
		case "id":
			err = json.Unmarshal(mb.val, &rec.ID)
		case "mapping":
			var m Mapping
			m, err = decodeMapping(mb.val)
			rec.Mapping = &m
		default:
			return record{}, fmt.Errorf("unknown key %q", mb.key)
		}
		if err != nil {
			return record{}, fmt.Errorf("%s: %w", mb.key, err)
		}
	}
	switch {
	case rec.Op == opAdd && has["mapping"] && !has["id"]:
	case rec.Op == opRemove && rec.ID != "" && !has["mapping"]:
	default:
		return record{}, fmt.Errorf("not an add with a mapping nor a remove with an id (op %q)", rec.Op)
	}
	return rec, nil
}

// loadState folds configs.json (absent when hasConfigs is false) and the
// journal into a state. Errors wrap [ErrCorrupt] and name the file, and
// for the journal the record.
func loadState(cpath string, configs []byte, hasConfigs bool, jpath string, jb []byte) (*state, journal, error) {
	st := newState()
	src := map[string]string{} // id -> where it was last stored, for errors
	if hasConfigs {
		ms, err := decodeConfigs(configs)
		if err != nil {
			return nil, journal{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, cpath, err)
		}
		for i, m := range ms {
			st.put(m)
			src[m.ID] = fmt.Sprintf("%s mappings[%d]", ConfigsFile, i)
		}
	}
	j, err := parseJournal(jb)
	if err != nil {
		return nil, journal{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, jpath, err)
	}
	for _, e := range j.entries {
		switch e.rec.Op {
		case opAdd:
			st.put(*e.rec.Mapping)
			src[e.rec.Mapping.ID] = fmt.Sprintf("%s record %d", JournalFile, e.n)
		case opRemove:
			st.remove(e.rec.ID)
		}
	}
	// Ports are checked on the final state only: a journal replayed again
	// onto the configs.json it was already folded into (a crash between
	// the two steps of a compaction) passes through states that never
	// existed, but ends where it ended the first time.
	ports := make(map[int]string, 2*len(st.mappings))
	for _, m := range st.list() {
		for _, p := range []int{m.Port1, m.Port2} {
			if other, ok := ports[p]; ok {
				return nil, journal{}, fmt.Errorf("%w: %s: mapping %q (%s) uses port %d, as does mapping %q (%s)",
					ErrCorrupt, jpath, m.ID, src[m.ID], p, other, src[other])
			}
			ports[p] = m.ID
		}
	}
	st.ports = ports
	return st, j, nil
}
