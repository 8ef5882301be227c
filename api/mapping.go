package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iofog/iofog-connector/core"
)

// maxThresholdMS bounds heartbeat thresholds (one year, in ms).
const maxThresholdMS = 365 * 24 * 3600 * 1000

// maxMappingDepth bounds the nesting of the mapping JSON; the fields we
// read are all scalars.
const maxMappingDepth = 16

// parseMapping parses the add request's "mapping" field. Errors wrap
// [ErrBadRequest] (or core.ErrInvalid) and name the field.
func parseMapping(raw string) (core.AddRequest, error) {
	obj, err := decodeObject(raw)
	if err != nil {
		return core.AddRequest{}, err
	}
	p := fields(obj)
	var req core.AddRequest
	if req.Type, err = p.str("type", true); err != nil {
		return req, err
	}
	if req.ID, err = p.str("id", false); err != nil {
		return req, err
	}
	if req.ID != "" {
		if err := core.CheckID(req.ID); err != nil {
			return req, err
		}
	}
	if req.Transport, err = p.str("transport", false); err != nil {
		return req, err
	}
	switch req.Type {
	case core.TypePublic:
		// The Controller sends maxconnections and heartbeatabsencethreshold;
		// the port1 names are accepted too.
		if req.MaxConnections1, err = p.limit("maxconnections", "maxconnectionsport1"); err != nil {
			return req, err
		}
		if req.Heartbeat1, err = p.threshold("heartbeatabsencethreshold", "heartbeatabsencethresholdport1"); err != nil {
			return req, err
		}
	case core.TypePrivate:
		if req.MaxConnections1, err = p.limit("maxconnectionsport1"); err != nil {
			return req, err
		}
		if req.MaxConnections2, err = p.limit("maxconnectionsport2"); err != nil {
			return req, err
		}
		if req.Heartbeat1, err = p.threshold("heartbeatabsencethresholdport1"); err != nil {
			return req, err
		}
		if req.Heartbeat2, err = p.threshold("heartbeatabsencethresholdport2"); err != nil {
			return req, err
		}
	default:
		return req, fmt.Errorf("%w: type %q is neither \"public\" nor \"private\"", ErrBadRequest, req.Type)
	}
	if req.IdleTimeout, err = p.idleTimeout("idletimeout"); err != nil {
		return req, err
	}
	if req.ProxyProtocol, err = p.proxyProtocol("proxyprotocol", req.Type); err != nil {
		return req, err
	}
	return req, nil
}

// proxyProtocol reads the optional PROXY protocol version: absent, null
// or "" is off, otherwise "v1" or "v2", and only on a public mapping (the
// Controller never sends it).
func (f fields) proxyProtocol(name, typ string) (string, error) {
	v, err := f.str(name, false)
	switch {
	case err != nil:
		return "", err
	case v != "" && !slices.Contains(core.ProxyProtocols, v):
		return "", fmt.Errorf("%w: %s %s is not \"v1\", \"v2\" or \"\" (off)", ErrBadRequest, name, clip(strconv.Quote(v)))
	case v != "" && typ != core.TypePublic:
		return "", fmt.Errorf("%w: %s is for public mappings only: the agent writes the public client's address to its local service, and a private mapping has no public client", ErrBadRequest, name)
	}
	return v, nil
}

// decodeObject decodes raw as one JSON object and returns its members. A
// key given twice is refused (JSON leaves its meaning open; Go would keep
// the last), as is anything after the object. The scan is bounded by the
// body limit and by maxMappingDepth.
func decodeObject(raw string) (map[string]json.RawMessage, error) {
	notObject := fmt.Errorf("%w: mapping is not a JSON object", ErrBadRequest)
	dec := json.NewDecoder(strings.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		key, ok := tok.(string)
		if !ok {
			return nil, notObject
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("%w: mapping has the key %s more than once", ErrBadRequest, clip(strconv.Quote(key)))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		if depth(v) > maxMappingDepth {
			return nil, fmt.Errorf("%w: mapping value of %s is nested too deeply", ErrBadRequest, clip(strconv.Quote(key)))
		}
		obj[key] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: mapping has data after the JSON object", ErrBadRequest)
	}
	return obj, nil
}

// depth returns the deepest nesting of arrays and objects in the valid
// JSON v.
func depth(v []byte) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, c := range v {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

type fields map[string]json.RawMessage

func (f fields) str(name string, required bool) (string, error) {
	raw, ok := f[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if required {
			return "", fmt.Errorf("%w: %s is missing", ErrBadRequest, name)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %s must be a string, got %s", ErrBadRequest, name, clip(string(raw)))
	}
	if required && s == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrBadRequest, name)
	}
	return s, nil
}

// integer returns the first of names present as a non-negative integer.
func (f fields) integer(names ...string) (int64, string, error) {
	for _, name := range names {
		raw, ok := f[name]
		if !ok {
			continue
		}
		var n json.Number
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || json.Unmarshal(raw, &n) != nil {
			return 0, name, fmt.Errorf("%w: %s must be a number, got %s", ErrBadRequest, name, clip(string(raw)))
		}
		v, err := n.Int64()
		if err != nil {
			return 0, name, fmt.Errorf("%w: %s must be a whole number, got %s", ErrBadRequest, name, clip(string(raw)))
		}
		if v < 0 {
			return 0, name, fmt.Errorf("%w: %s must not be negative, got %d", ErrBadRequest, name, v)
		}
		return v, name, nil
	}
	return 0, names[0], fmt.Errorf("%w: %s is missing", ErrBadRequest, names[0])
}

func (f fields) limit(names ...string) (int, error) {
	v, name, err := f.integer(names...)
	switch {
	case err != nil:
		return 0, err
	case v == 0:
		return 0, fmt.Errorf("%w: %s must be at least 1, got 0", ErrBadRequest, name)
	case v > 1<<20:
		return 0, fmt.Errorf("%w: %s %d is too large", ErrBadRequest, name, v)
	}
	return int(v), nil
}

// threshold reads a heartbeat absence threshold in ms: at least
// core.MinHeartbeatThreshold, at most a year.
func (f fields) threshold(names ...string) (time.Duration, error) {
	v, name, err := f.integer(names...)
	minMS := core.MinHeartbeatThreshold.Milliseconds()
	switch {
	case err != nil:
		return 0, err
	case v < minMS:
		return 0, fmt.Errorf("%w: %s %d ms is below the minimum of %d ms (legacy ioFog agents beat every %d ms and need at least that)",
			ErrBadRequest, name, v, minMS, core.LegacyAgentBeat.Milliseconds())
	case v > maxThresholdMS:
		return 0, fmt.Errorf("%w: %s %d ms is more than a year", ErrBadRequest, name, v)
	}
	return time.Duration(v) * time.Millisecond, nil
}

// idleTimeout reads the optional relay idle timeout in ms: absent, null or
// 0 is off, otherwise from core.MinIdleTimeout to core.MaxIdleTimeout.
func (f fields) idleTimeout(name string) (time.Duration, error) {
	if raw, ok := f[name]; !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return 0, nil
	}
	v, _, err := f.integer(name)
	lo, hi := core.MinIdleTimeout.Milliseconds(), core.MaxIdleTimeout.Milliseconds()
	switch {
	case err != nil:
		return 0, err
	case v != 0 && (v < lo || v > hi):
		return 0, fmt.Errorf("%w: %s %d ms is neither 0 (off) nor from %d to %d ms", ErrBadRequest, name, v, lo, hi)
	}
	return time.Duration(v) * time.Millisecond, nil
}
