package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// MaxSettingsSize bounds the settings a host hands a plugin: the JSON of
// its transports.<name> subtree. A host refuses larger settings before
// starting the plugin, and a plugin refuses them too.
const MaxSettingsSize = 64 << 10

// Configurable is an optional interface of the [sdk.Transport] a plugin
// serves: the transport takes settings. The operator writes them as the
// subtree transports.<name> of the connector's (or agent's) settings file,
// or as environment variables IOFOG_CONNECTOR_TRANSPORTS_<NAME>_<KEY>; the
// host hands them over once, when the plugin process starts and before
// any Listen or Dial. An error stops the host's start with the message,
// which should name the key (see [Settings.Decode]).
//
// A transport that is not Configurable runs with no settings; given some,
// its host refuses to start, naming the first key, rather than ignore
// them.
type Configurable interface {
	Configure(ctx context.Context, s Settings) error
}

// Settings are the settings of a plugin transport, as the operator wrote
// them: a JSON object of keys to values. Values set by environment
// variables are JSON strings; [Settings.Decode] reads numbers, booleans,
// durations and lists from strings too.
type Settings struct {
	name string // the transport's name, for errors
	keys map[string]json.RawMessage
}

// ParseSettings reads a JSON object of at most [MaxSettingsSize] bytes as
// the settings of the transport name. An empty input is no settings. It
// is what the plugin side of the protocol calls; it is exported for
// tests of a transport's Configure.
func ParseSettings(name string, b []byte) (Settings, error) {
	s := Settings{name: name, keys: map[string]json.RawMessage{}}
	if len(b) > MaxSettingsSize {
		return s, fmt.Errorf("transports.%s: %d bytes of settings, more than the %d allowed: %w", name, len(b), MaxSettingsSize, sdk.ErrInvalidConfig)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(b, &s.keys); err != nil || s.keys == nil {
		return Settings{name: name}, fmt.Errorf("transports.%s: settings are not a JSON object: %w", name, sdk.ErrInvalidConfig)
	}
	return s, nil
}

// Len returns how many keys were set.
func (s Settings) Len() int { return len(s.keys) }

// Keys returns the keys set, sorted, as the operator spelt them.
func (s Settings) Keys() []string { return slices.Sorted(maps.Keys(s.keys)) }

// Raw returns the JSON value of key as the operator spelt it, and whether
// it is set.
func (s Settings) Raw(key string) (json.RawMessage, bool) {
	v, ok := s.keys[key]
	return v, ok
}

// key is the settings key of a field: its json tag's name, or its name in
// kebab-case (ReadLimit is read-limit, PinSHA256 is pin-sha256).
func fieldKey(f reflect.StructField) (string, bool) {
	if tag, ok := f.Tag.Lookup("json"); ok {
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			return "", false
		}
		if name != "" {
			return name, true
		}
	}
	return sdk.SettingsKey(f.Name), true
}

// Decode sets the fields of the struct dst points to from the settings.
// Each key names a field: its json tag's name, or its name in kebab-case
// (ReadLimit is read-limit), matched without regard to case, dashes or
// underscores (read_limit, READ_LIMIT). A key that names no field is an
// error naming the key and the keys there are; fields not set keep their
// value (set defaults before Decode). Fields may be strings, booleans,
// integers, floats, [time.Duration] ("5s", or a number of milliseconds) or
// lists of strings (a JSON list, or a comma-separated string); the other
// types are decoded by encoding/json. When dst has a Validate() error
// method it is called last. Every error starts with the key,
// transports.<name>.<key>.
func (s Settings) Decode(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("transports.%s: Settings.Decode needs a pointer to a struct, not %T", s.name, dst)
	}
	st := rv.Elem()
	type target struct {
		key   string
		index int
	}
	var fields []target
	for i := range st.NumField() {
		f := st.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if k, ok := fieldKey(f); ok {
			fields = append(fields, target{key: k, index: i})
		}
	}
	for _, k := range s.Keys() {
		i := slices.IndexFunc(fields, func(t target) bool { return squashKey(t.key) == squashKey(k) })
		if i < 0 {
			known := make([]string, len(fields))
			for j, t := range fields {
				known[j] = t.key
			}
			takes := "no settings"
			if len(known) > 0 {
				takes = strings.Join(known, ", ")
			}
			return fmt.Errorf("transports.%s.%s: unknown key; %s takes %s: %w", s.name, k, s.name, takes, sdk.ErrInvalidConfig)
		}
		if err := decodeValue(s.keys[k], st.Field(fields[i].index)); err != nil {
			return fmt.Errorf("transports.%s.%s: %s: %w", s.name, k, err.Error(), sdk.ErrInvalidConfig)
		}
	}
	if v, ok := dst.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("transports.%s: %w", s.name, err)
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeValue sets v from the JSON value raw.
func decodeValue(raw json.RawMessage, v reflect.Value) error {
	var str string
	isStr := json.Unmarshal(raw, &str) == nil
	shown := string(raw)
	if len(shown) > 64 {
		shown = shown[:64] + "…"
	}
	switch {
	case v.Type() == durationType:
		if isStr {
			d, err := time.ParseDuration(strings.TrimSpace(str))
			if err != nil {
				if ms, err2 := strconv.ParseInt(strings.TrimSpace(str), 10, 64); err2 == nil {
					d, err = time.Duration(ms)*time.Millisecond, nil
				}
			}
			if err != nil || d < 0 {
				return fmt.Errorf("%s is not a duration (\"5s\", or milliseconds)", shown)
			}
			v.SetInt(int64(d))
			return nil
		}
		var ms int64
		if err := json.Unmarshal(raw, &ms); err != nil || ms < 0 {
			return fmt.Errorf("%s is not a duration (\"5s\", or milliseconds)", shown)
		}
		v.SetInt(int64(time.Duration(ms) * time.Millisecond))
		return nil
	case v.Kind() == reflect.String:
		if !isStr {
			return fmt.Errorf("%s is not a string", shown)
		}
		v.SetString(str)
		return nil
	case v.Kind() == reflect.Bool:
		if isStr {
			b, err := strconv.ParseBool(strings.TrimSpace(str))
			if err != nil {
				return fmt.Errorf("%s is not true or false", shown)
			}
			v.SetBool(b)
			return nil
		}
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return fmt.Errorf("%s is not true or false", shown)
		}
		v.SetBool(b)
		return nil
	case v.CanInt():
		text := string(raw)
		if isStr {
			text = strings.TrimSpace(str)
		}
		n, err := strconv.ParseInt(text, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s is not a whole number that fits", shown)
		}
		v.SetInt(n)
		return nil
	case v.CanUint():
		text := string(raw)
		if isStr {
			text = strings.TrimSpace(str)
		}
		n, err := strconv.ParseUint(text, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s is not a whole number, 0 or more, that fits", shown)
		}
		v.SetUint(n)
		return nil
	case v.CanFloat():
		text := string(raw)
		if isStr {
			text = strings.TrimSpace(str)
		}
		f, err := strconv.ParseFloat(text, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s is not a number", shown)
		}
		v.SetFloat(f)
		return nil
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var list []string
		if isStr {
			for p := range strings.SplitSeq(str, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, p)
				}
			}
		} else if json.Unmarshal(raw, &list) != nil {
			return fmt.Errorf("%s is not a list of strings", shown)
		}
		v.Set(reflect.ValueOf(list).Convert(v.Type()))
		return nil
	}
	ptr := reflect.New(v.Type())
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ptr.Interface()); err != nil {
		return fmt.Errorf("%s is not a %s: %v", shown, v.Type(), err)
	}
	v.Set(ptr.Elem())
	return nil
}

// squashKey is a key without case, dashes or underscores.
func squashKey(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
}

// configure is the plugin side of Configure: it hands the settings to a
// Configurable transport, and refuses them, naming the first key, when
// the transport takes none.
func configure(ctx context.Context, impl sdk.Transport, b []byte) error {
	s, err := ParseSettings(impl.Name(), b)
	if err != nil {
		return err
	}
	c, ok := impl.(Configurable)
	if !ok {
		if s.Len() == 0 {
			return nil
		}
		return fmt.Errorf("transports.%s.%s: the %s plugin takes no settings: %w", impl.Name(), s.Keys()[0], impl.Name(), sdk.ErrInvalidConfig)
	}
	return c.Configure(ctx, s)
}
