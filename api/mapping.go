package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/iofog/iofog-connector/core"
)

// maxThresholdMS bounds heartbeat thresholds (one year, in ms).
const maxThresholdMS = 365 * 24 * 3600 * 1000

// parseMapping parses the add request's "mapping" field. Errors wrap
// [ErrBadRequest] and name the field.
func parseMapping(raw string) (core.AddRequest, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return core.AddRequest{}, fmt.Errorf("%w: mapping is not a JSON object", ErrBadRequest)
	}
	if dec.More() {
		return core.AddRequest{}, fmt.Errorf("%w: mapping has data after the JSON object", ErrBadRequest)
	}
	p := fields(obj)
	var req core.AddRequest
	var err error
	if req.Type, err = p.str("type", true); err != nil {
		return req, err
	}
	if req.ID, err = p.str("id", false); err != nil {
		return req, err
	}
	if len(req.ID) > 128 || strings.ContainsFunc(req.ID, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return req, fmt.Errorf("%w: id must be at most 128 printable characters without spaces", ErrBadRequest)
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
	return req, nil
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
		return "", fmt.Errorf("%w: %s must be a string, got %s", ErrBadRequest, name, raw)
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
			return 0, name, fmt.Errorf("%w: %s must be a number, got %s", ErrBadRequest, name, raw)
		}
		v, err := n.Int64()
		if err != nil {
			return 0, name, fmt.Errorf("%w: %s must be a whole number, got %s", ErrBadRequest, name, raw)
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

func (f fields) threshold(names ...string) (time.Duration, error) {
	v, name, err := f.integer(names...)
	switch {
	case err != nil:
		return 0, err
	case v > maxThresholdMS:
		return 0, fmt.Errorf("%w: %s %d ms is more than a year", ErrBadRequest, name, v)
	}
	return time.Duration(v) * time.Millisecond, nil
}
