package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// legacyKeys are the keys every stored mapping carries: the Java connector
// wrote exactly these nine, and so does this package. A mapping missing one
// is refused, since a missing key would silently change its meaning (no
// passcodeport2 turns a private mapping public; no threshold turns
// heartbeat enforcement off).
var legacyKeys = []string{
	"id", "port1", "port2", "maxconnectionsport1", "maxconnectionsport2",
	"passcodeport1", "passcodeport2", "heartbeatabsencethresholdport1", "heartbeatabsencethresholdport2",
}

// mappingKeys is every key of a mapping's JSON form, read from the json
// tags of [Mapping] so that a field added there is known here. It is set
// once at init and never written again.
var mappingKeys = jsonKeys(reflect.TypeFor[Mapping]())

func jsonKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		keys[name] = true
	}
	return keys
}

// member is one key and its raw value in a JSON object.
type member struct {
	key string
	val json.RawMessage
}

// members parses b, which must hold exactly one JSON object and nothing
// after it but white space, and returns its members in order. A key that
// appears twice is refused: encoding/json would silently keep the last.
//
// Valid JSON, the common case, is split by a plain scan (a store of
// 10,000 mappings loads several times faster than through json.Decoder's
// tokens); anything else goes through the tokenizer for its error.
func members(b []byte) ([]member, error) {
	if !json.Valid(b) {
		return tokenMembers(b)
	}
	return scanMembers(b)
}

// scanMembers is members for b known to be valid JSON.
func scanMembers(b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return tokenMembers(b) // for the "not a JSON object" error
	}
	var out []member
	seen := map[string]bool{}
	for i = skipSpace(b, i+1); b[i] != '}'; {
		end := skipValue(b, i) // the key
		key, err := jsonString(b[i:end])
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		i = skipSpace(b, skipSpace(b, end)+1) // past the colon
		end = skipValue(b, i)
		out = append(out, member{key, json.RawMessage(b[i:end])})
		if i = skipSpace(b, end); b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, nil
}

// jsonString decodes a JSON string token; most keys need no unescaping.
func jsonString(tok []byte) (string, error) {
	if bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1 : len(tok)-1]), nil
	}
	var s string
	err := json.Unmarshal(tok, &s)
	return s, err
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i]; b holds
// valid JSON.
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// tokenMembers is members through json.Decoder's tokens: slower, and
// precise about what is wrong.
func tokenMembers(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object (found %s)", describe(tok))
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxErr(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is %s", describe(tok))
		}
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, syntaxErr(err))
		}
		out = append(out, member{key, raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, syntaxErr(err)
	}
	switch tok, err := dec.Token(); {
	case errors.Is(err, io.EOF):
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("data after the JSON object at byte %d: %w", dec.InputOffset(), err)
	default:
		return nil, fmt.Errorf("a second JSON value (%s) after the object at byte %d", describe(tok), dec.InputOffset())
	}
}

func syntaxErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of JSON")
	}
	return err
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// elements returns the raw elements of b, valid JSON that must be an
// array.
func elements(b []byte) ([]json.RawMessage, error) {
	i := skipSpace(b, 0)
	if b[i] != '[' {
		return tokenElements(b) // for its error
	}
	var out []json.RawMessage
	for i = skipSpace(b, i+1); b[i] != ']'; {
		end := skipValue(b, i)
		out = append(out, json.RawMessage(b[i:end]))
		if i = skipSpace(b, end); b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, nil
}

// tokenElements is elements through json.Decoder's tokens.
func tokenElements(b []byte) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("is %s, want an array", describe(tok))
	}
	var out []json.RawMessage
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxErr(err)
		}
		out = append(out, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxErr(err)
	}
	return out, nil
}

// decodeConfigs parses the contents of configs.json strictly: one JSON
// object whose only key is "mappings", an array of mappings in the form
// [decodeMapping] accepts, with no id and no port used twice. The error
// names the offending key or mapping but not the file.
func decodeConfigs(b []byte) ([]Mapping, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("the file is empty")
	}
	if !utf8.Valid(b) {
		return nil, errors.New("not valid UTF-8")
	}
	top, err := members(b)
	if err != nil {
		return nil, err
	}
	var list json.RawMessage
	for _, mb := range top {
		if mb.key != "mappings" {
			return nil, fmt.Errorf("unknown top-level key %q (the only key is \"mappings\")", mb.key)
		}
		list = mb.val
	}
	if list == nil {
		return nil, errors.New(`no "mappings" key`)
	}
	raws, err := elements(list)
	if err != nil {
		return nil, fmt.Errorf(`"mappings" %w`, err)
	}
	out := make([]Mapping, 0, len(raws))
	st := newState()
	for i, raw := range raws {
		m, err := decodeMapping(raw)
		if err == nil {
			err = st.checkFree(m)
		}
		if err != nil {
			return nil, fmt.Errorf("mappings[%d]%s: %w", i, idOf(raw), err)
		}
		if _, dup := st.mappings[m.ID]; dup {
			return nil, fmt.Errorf("mappings[%d]: id %q is stored twice", i, m.ID)
		}
		st.put(m)
		out = append(out, m)
	}
	return out, nil
}

// idOf names the id in a raw mapping for an error message, if it has one.
func idOf(raw json.RawMessage) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil || v.ID == "" {
		return ""
	}
	return fmt.Sprintf(" (id %q)", v.ID)
}

// decodeMapping parses one stored mapping, valid JSON, strictly: every key of the legacy
// format present, no key that [Mapping] does not have (exact case), no key
// twice, no null, values of the right JSON type, and [check] passing.
//
// Unknown keys are refused rather than ignored: both writers (the Java
// connector and this package) write a fixed set of keys, so an unknown one
// is damage, a misspelling (which would silently drop the real value) or a
// file from a newer version, and compaction would lose it for good.
func decodeMapping(raw json.RawMessage) (Mapping, error) {
	mbs, err := scanMembers(raw) // raw is part of a document found valid
	if err != nil {
		return Mapping{}, err
	}
	has := make(map[string]bool, len(mbs))
	for _, mb := range mbs {
		if !mappingKeys[mb.key] {
			return Mapping{}, fmt.Errorf("unknown key %q", mb.key)
		}
		if bytes.Equal(mb.val, []byte("null")) {
			return Mapping{}, fmt.Errorf("%s is null", mb.key)
		}
		has[mb.key] = true
	}
	for _, k := range legacyKeys {
		if !has[k] {
			return Mapping{}, fmt.Errorf("key %q is missing", k)
		}
	}
	var m Mapping
	if err := json.Unmarshal(raw, &m); err != nil {
		return Mapping{}, err
	}
	if err := check(m); err != nil {
		return Mapping{}, err
	}
	return m, nil
}

// check tells whether m can be stored: what every writer guarantees and
// the daemon relies on when it reopens m.
func check(m Mapping) error {
	switch {
	case m.ID == "":
		return errors.New("id is empty")
	case !validUTF8(m.ID, m.PasscodePort1, m.PasscodePort2, m.Type, m.Transport, m.ProxyProtocol):
		// JSON would store U+FFFD instead: the mapping would come back
		// under another id or passcode.
		return errors.New("a string field is not valid UTF-8")
	case m.Port1 < 1 || m.Port1 > 65535:
		return fmt.Errorf("port1 %d out of range", m.Port1)
	case m.Port2 < 1 || m.Port2 > 65535:
		return fmt.Errorf("port2 %d out of range", m.Port2)
	case m.Port1 == m.Port2:
		return fmt.Errorf("port1 and port2 are both %d", m.Port1)
	case m.PasscodePort1 == "":
		return errors.New("passcodeport1 is empty")
	case m.Type != "" && m.Type != "public" && m.Type != "private":
		return fmt.Errorf("type %q is neither public nor private", m.Type)
	case m.Type == "private" && m.PasscodePort2 == "":
		return errors.New("passcodeport2 of a private mapping is empty")
	case m.MaxConnections1 < 0 || m.MaxConnections2 < 0:
		return errors.New("a maxconnections is negative")
	case m.HeartbeatAbsenceThresholdPort1 < 0 || m.HeartbeatAbsenceThresholdPort2 < 0:
		return errors.New("a heartbeatabsencethreshold is negative")
	case m.ProxyProtocol != "" && m.ProxyProtocol != "v1" && m.ProxyProtocol != "v2":
		return fmt.Errorf("proxyprotocol %q is not \"v1\" or \"v2\"", clipped(m.ProxyProtocol))
	case m.ProxyProtocol != "" && !m.IsPublic():
		return fmt.Errorf("proxyprotocol %q on a private mapping (it is for public mappings only)", m.ProxyProtocol)
	}
	return nil
}

// clipped shortens a stored value for an error message.
func clipped(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// encodeConfigs renders ms as configs.json.
func encodeConfigs(ms []Mapping) ([]byte, error) {
	if ms == nil {
		ms = []Mapping{} // "mappings": [], never null
	}
	b, err := json.MarshalIndent(file{Mappings: ms}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("store: encode: %w", err)
	}
	return append(b, '\n'), nil
}
