package settings

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/iofog/iofog-connector/core/ports"
)

// Ranges is a list of port ranges: in the file a list of "A-B" or "N"
// (strings or numbers), from the environment a comma-separated string.
type Ranges []ports.Range

// Checksums maps a plugin's file name to the hex SHA-256 of its
// executable: in the file an object, from the environment
// "NAME=HEX,NAME=HEX".
type Checksums map[string]string

const checksumsWant = `an object of plugin file names to SHA-256 sums (64 hex digits), or "NAME=HEX,..."`

// sums decodes the checksums (already checked by the hook).
func (c Checksums) sums() map[string][]byte {
	if len(c) == 0 {
		return nil
	}
	out := make(map[string][]byte, len(c))
	for name, h := range c {
		b, _ := decodeSHA256(h)
		out[name] = b
	}
	return out
}

func decodeSHA256(h string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(h), ":", ""))
	if err != nil || len(b) != 32 {
		return nil, errors.New("not 64 hex digits")
	}
	return b, nil
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	rangesType    = reflect.TypeFor[Ranges]()
	levelType     = reflect.TypeFor[slog.Level]()
	checksumsType = reflect.TypeFor[Checksums]()
)

// badValue is a decode hook's error: the value (or its element at index)
// is not what is wanted.
type badValue struct {
	index int // -1: the value itself
	value any
	want  string // "" means the key's own description
}

func (e *badValue) Error() string { return fmt.Sprintf("%s is not %s", quote(e.value), e.want) }

// decode decodes one key's layered value into dst with the hooks; nil
// leaves dst alone. An error names the key, the value, its source and
// what is wanted.
func (l *loader) decode(key, want string, value, dst any) error {
	if value == nil {
		return nil
	}
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.DecodeHookFuncType(hook),
		Result:      dst,
		ErrorUnused: true,
	})
	if err != nil {
		return err
	}
	if err := d.Decode(value); err != nil {
		var bv *badValue
		if !errors.As(err, &bv) {
			return l.fail(key, value, want)
		}
		if bv.want == "" {
			bv.want = want
		}
		if bv.index >= 0 {
			return fmt.Errorf("%s[%d]: %s is not %s (%s)", key, bv.index, quote(bv.value), bv.want, l.source(key))
		}
		return l.fail(key, bv.value, bv.want)
	}
	return nil
}

// hook converts what JSON, the environment and flags give (strings,
// float64, bool, []any, map[string]any) into the settings' types. It
// replaces spf13/cast: numbers must be whole, strings stay strings.
func hook(_, to reflect.Type, data any) (any, error) {
	switch {
	case to == durationType:
		return toDuration(data)
	case to == rangesType:
		return toRanges(data)
	case to == levelType:
		return toLevel(data)
	case to == checksumsType:
		return toChecksums(data)
	case to.Kind() == reflect.Bool:
		return toBool(data)
	case isInt(to.Kind()), isUint(to.Kind()):
		return toInt(data, to)
	case to.Kind() == reflect.Slice && to.Elem().Kind() == reflect.String:
		return toStrings(data)
	}
	return data, nil
}

func isInt(k reflect.Kind) bool {
	return k == reflect.Int || k == reflect.Int8 || k == reflect.Int16 || k == reflect.Int32 || k == reflect.Int64
}

func isUint(k reflect.Kind) bool {
	return k == reflect.Uint || k == reflect.Uint8 || k == reflect.Uint16 || k == reflect.Uint32 || k == reflect.Uint64
}

func bad(v any) error { return &badValue{index: -1, value: v} }

// toDuration reads "5s"-style text or a number of milliseconds (a number
// or its text); negative durations are refused.
func toDuration(data any) (any, error) {
	switch x := data.(type) {
	case time.Duration:
		if x < 0 {
			return nil, bad(data)
		}
		return x, nil
	case string:
		if ms, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			if ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
				return nil, bad(data)
			}
			return time.Duration(ms) * time.Millisecond, nil
		}
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil || d < 0 {
			return nil, bad(data)
		}
		return d, nil
	default:
		ms, ok := whole(data)
		if !ok || ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
			return nil, bad(data)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
}

// whole returns a number that is a whole int64.
func whole(data any) (int64, bool) {
	switch x := data.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// toInt reads a whole number or its text into an integer type, refusing
// what does not fit.
func toInt(data any, to reflect.Type) (any, error) {
	var n int64
	switch x := data.(type) {
	case string:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64); err != nil {
			if u, uerr := strconv.ParseUint(strings.TrimSpace(x), 10, 64); uerr == nil && isUint(to.Kind()) {
				out := reflect.New(to).Elem()
				if out.OverflowUint(u) {
					return nil, bad(data)
				}
				out.SetUint(u)
				return out.Interface(), nil
			}
			return nil, bad(data)
		}
	case bool:
		return nil, bad(data)
	default:
		var ok bool
		if n, ok = whole(data); !ok {
			return nil, bad(data)
		}
	}
	out := reflect.New(to).Elem()
	if isUint(to.Kind()) {
		if n < 0 || out.OverflowUint(uint64(n)) {
			return nil, bad(data)
		}
		out.SetUint(uint64(n))
	} else {
		if out.OverflowInt(n) {
			return nil, bad(data)
		}
		out.SetInt(n)
	}
	return out.Interface(), nil
}

// toBool reads true/false, their text (or 1/0, as the legacy loader
// accepted), refusing anything else.
func toBool(data any) (any, error) {
	switch x := data.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err != nil {
			return nil, bad(data)
		}
		return b, nil
	}
	if n, ok := whole(data); ok && (n == 0 || n == 1) {
		return n == 1, nil
	}
	return nil, bad(data)
}

// toLevel reads debug, info, warn or error (slog's names, any case).
func toLevel(data any) (any, error) {
	s, ok := data.(string)
	if !ok {
		return nil, bad(data)
	}
	var lvl slog.Level
	if strings.TrimSpace(s) == "" {
		return slog.LevelInfo, nil
	}
	if err := lvl.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return nil, bad(data)
	}
	return lvl, nil
}

// ParseLevel reads a log level as the log-level setting does: debug,
// info, warn or error; empty is info.
func ParseLevel(s string) (slog.Level, error) {
	lvl, err := toLevel(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return lvl.(slog.Level), nil
}

// items splits a list: a JSON list, or a comma-separated string.
func items(data any) ([]any, bool) {
	switch x := data.(type) {
	case []any:
		return x, true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case string:
		var out []any
		for _, s := range strings.Split(x, ",") {
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// toRanges reads a list of "N" or "A-B" (or numbers).
func toRanges(data any) (any, error) {
	list, ok := items(data)
	if !ok {
		return nil, bad(data)
	}
	out := Ranges{}
	for i, it := range list {
		var text string
		switch x := it.(type) {
		case string:
			text = x
		default:
			n, ok := whole(x)
			if !ok {
				return nil, &badValue{index: i, value: it, want: "a port or a range"}
			}
			text = strconv.FormatInt(n, 10)
		}
		r, err := ports.ParseSpec(text)
		if err != nil {
			return nil, &badValue{index: i, value: text, want: "a port or a range"}
		}
		out = append(out, r)
	}
	return out, nil
}

// toStrings reads a list of strings.
func toStrings(data any) (any, error) {
	list, ok := items(data)
	if !ok {
		return nil, bad(data)
	}
	out := make([]string, 0, len(list))
	for i, it := range list {
		s, ok := it.(string)
		if !ok {
			return nil, &badValue{index: i, value: it, want: "a string"}
		}
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// toChecksums reads plugins.checksums. Names are file names (viper
// lowercases keys of the file); sums are 64 hex digits, colons allowed.
func toChecksums(data any) (any, error) {
	out := Checksums{}
	add := func(name string, v any) error {
		h, ok := v.(string)
		if !ok {
			return &badValue{index: -1, value: v, want: "a SHA-256 sum (64 hex digits) for " + strconv.Quote(name)}
		}
		if _, err := decodeSHA256(h); err != nil {
			return &badValue{index: -1, value: h, want: "a SHA-256 sum (64 hex digits) for " + strconv.Quote(name)}
		}
		if name == "" || strings.ContainsAny(name, `/\`) {
			return &badValue{index: -1, value: name, want: "a plugin file name"}
		}
		out[strings.ToLower(name)] = h
		return nil
	}
	switch x := data.(type) {
	case map[string]any:
		for name, v := range x {
			if err := add(name, v); err != nil {
				return nil, err
			}
		}
	case string:
		for _, pair := range strings.Split(x, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			name, h, ok := strings.Cut(pair, "=")
			if !ok {
				return nil, &badValue{index: -1, value: pair, want: "NAME=HEX"}
			}
			if err := add(strings.TrimSpace(name), strings.TrimSpace(h)); err != nil {
				return nil, err
			}
		}
	default:
		return nil, bad(data)
	}
	return out, nil
}
