package settings

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/iofog/iofog-connector/sdk"
)

// Transports are the settings of transports and plugins: plugins.dir,
// plugins.checksums and the transports.<name> subtrees.
type Transports struct {
	// PluginDir is the directory of transport plugins (plugins.dir);
	// empty means no plugins.
	PluginDir string
	// PluginChecksums maps a plugin's file name, in lower case, to the
	// SHA-256 its executable must have (plugins.checksums). Nil means no
	// pins.
	PluginChecksums map[string][]byte
	// Configs holds, for each name of [Source.Transports], its Config
	// decoded from transports.<name> (a value of the same type; the zero
	// Config when the subtree is absent) and validated.
	Configs map[string]any
	// Plugins holds the transports.<name> subtrees that name no built-in
	// transport, as decoded JSON, for the transports of plugins.
	Plugins map[string]map[string]any
	// PluginEnv holds the environment variables
	// IOFOG_CONNECTOR_TRANSPORTS_<NAME>_<KEY> that set no built-in
	// transport's key, by the part after IOFOG_CONNECTOR_TRANSPORTS_
	// (NAME_KEY): which plugin NAME is can only be told once the plugins
	// reported their names ([Transports.PluginSettings]).
	PluginEnv map[string]string
}

// pluginEnvPrefix starts the environment variables of transports.<name>.
const pluginEnvPrefix = EnvPrefix + "_TRANSPORTS_"

// envForm is a transport name as it appears in an environment variable:
// upper case, dashes as underscores.
func envForm(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// PluginSettings returns the settings of the plugin transport name: its
// transports.<name> subtree of the settings file, overridden key by key
// by IOFOG_CONNECTOR_TRANSPORTS_<NAME>_<KEY> (the key in lower case with
// dashes for underscores: _READ_LIMIT sets read-limit, as
// read-limit, read_limit or readLimit in the file). Values from the
// environment are strings; the plugin reads numbers, booleans and
// durations from them (sdk/plugin Settings.Decode). Nil means none.
func (t Transports) PluginSettings(name string) map[string]any {
	var out map[string]any
	if sub := t.Plugins[name]; len(sub) > 0 {
		out = maps.Clone(sub)
	}
	prefix := envForm(name) + "_"
	for _, suffix := range slices.Sorted(maps.Keys(t.PluginEnv)) {
		rest, ok := strings.CutPrefix(suffix, prefix)
		if !ok || rest == "" {
			continue
		}
		key := strings.ToLower(strings.ReplaceAll(rest, "_", "-"))
		if out == nil {
			out = map[string]any{}
		}
		for k := range out {
			if squash(k) == squash(key) {
				delete(out, k)
			}
		}
		out[key] = t.PluginEnv[suffix]
	}
	return out
}

// CheckPlugins refuses settings for plugins that are not there: a
// transports.<name> subtree that names no transport of have (a typo would
// otherwise drop a setting, such as a pin, silently), and an environment
// variable IOFOG_CONNECTOR_TRANSPORTS_<NAME>_<KEY> whose NAME is no
// plugin of plugins or could be two of them. Variables that start with a
// built-in transport's name (builtin) and match no plugin are left to
// the built-in's keys, as before plugins took settings. have lists every
// transport, plugins every plugin.
func (t Transports) CheckPlugins(have, builtin, plugins []string) error {
	for _, name := range slices.Sorted(maps.Keys(t.Plugins)) {
		if !slices.Contains(have, name) {
			return fmt.Errorf("transports.%s: there is no transport %q (have: %s)", name, name, strings.Join(slices.Sorted(slices.Values(have)), ", "))
		}
	}
	for _, suffix := range slices.Sorted(maps.Keys(t.PluginEnv)) {
		var match []string
		for _, p := range plugins {
			if strings.HasPrefix(suffix, envForm(p)+"_") && len(suffix) > len(p)+1 {
				match = append(match, p)
			}
		}
		switch {
		case len(match) > 1:
			return fmt.Errorf("%s%s: names a key of the plugins %s alike; set it in the settings file instead", pluginEnvPrefix, suffix, strings.Join(match, " and "))
		case len(match) == 1:
			continue
		}
		if slices.ContainsFunc(builtin, func(b string) bool { return strings.HasPrefix(suffix, envForm(b)+"_") }) {
			continue
		}
		return fmt.Errorf("%s%s: there is no transport plugin of that name (have: %s)", pluginEnvPrefix, suffix, strings.Join(slices.Sorted(slices.Values(have)), ", "))
	}
	return nil
}

// pluginEnv reads the environment variables of transports.<name> that
// set none of the keys of the built-in transports (known).
func pluginEnv(known []string) map[string]string {
	bound := map[string]bool{}
	for _, k := range known {
		bound[EnvName(k)] = true
	}
	var out map[string]string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		suffix, ok := strings.CutPrefix(k, pluginEnvPrefix)
		if !ok || suffix == "" || v == "" || bound[k] {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[suffix] = v
	}
	return out
}

// transportKeys lists the keys of plugins and of the fields of each
// built-in transport's Config, so the environment can set them.
func transportKeys(protos map[string]any) []string {
	keys := []string{"plugins.dir", "plugins.checksums"}
	for _, name := range slices.Sorted(maps.Keys(protos)) {
		for _, f := range configFields(reflect.TypeOf(protos[name])) {
			keys = append(keys, "transports."+name+"."+f.key)
		}
	}
	return keys
}

// LoadTransports reads only the settings of transports and plugins, for
// the agent and the plugins command: plugins.dir (--plugin-dir),
// plugins.checksums and the transports.<name> subtrees, from flags, the
// environment and the settings file (src.DefaultFile when none is named
// and it exists). Other keys of the file are not read.
func LoadTransports(src Source) (*Transports, error) {
	l, err := open(src, transportKeys(src.Transports))
	if err != nil {
		return nil, err
	}
	var r raw
	if err := l.decodeKeys([]Key{
		{Name: "plugins.dir", Want: wantString, dst: func(r *raw) any { return &r.PluginDir }},
		{Name: "plugins.checksums", Want: checksumsWant, dst: func(r *raw) any { return &r.Checksums }},
	}, &r); err != nil {
		return nil, err
	}
	t, err := l.transports(src.Transports)
	if err != nil {
		return nil, err
	}
	t.PluginDir, t.PluginChecksums = r.PluginDir, r.Checksums.sums()
	return &t, nil
}

// field is a settable field of a transport Config.
type field struct {
	key   string // kebab-case key: HandshakeTimeout is handshake-timeout
	index int
	typ   reflect.Type
}

// configFields lists the exported fields of a Config struct.
func configFields(t reflect.Type) []field {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		out = append(out, field{key: sdk.SettingsKey(f.Name), index: i, typ: f.Type})
	}
	return out
}

// squash is a key without case, dashes or underscores, to match the
// file's spellings (pin-sha256, pin_sha256, PinSHA256) to a field.
func squash(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
}

// transports decodes the transports.<name> subtrees.
func (l *loader) transports(protos map[string]any) (Transports, error) {
	t := Transports{Configs: map[string]any{}}
	var tree map[string]any
	if x := l.v.Get("transports"); x != nil {
		m, ok := x.(map[string]any)
		if !ok {
			return t, l.fail("transports", x, "an object of transport names to their settings")
		}
		tree = m
	}
	for name, sub := range tree {
		if _, builtin := protos[name]; builtin {
			continue
		}
		if !sdk.ValidName(name) {
			return t, l.fail("transports", name, "a transport name (in transports.<name>)")
		}
		m, ok := sub.(map[string]any)
		if !ok {
			return t, l.fail("transports."+name, sub, "an object of settings")
		}
		if t.Plugins == nil {
			t.Plugins = map[string]map[string]any{}
		}
		t.Plugins[name] = m
	}
	for _, name := range slices.Sorted(maps.Keys(protos)) {
		cfg, err := l.transport(name, reflect.TypeOf(protos[name]), tree[name])
		if err != nil {
			return t, err
		}
		t.Configs[name] = cfg
	}
	t.PluginEnv = pluginEnv(transportKeys(protos))
	return t, nil
}

// validator is what transport Configs implement (on the pointer).
type validator interface{ Validate() error }

// transport decodes transports.<name> into a new value of typ: each key of
// the file must name a field; the environment overrides field by field.
func (l *loader) transport(name string, typ reflect.Type, sub any) (any, error) {
	prefix := "transports." + name
	fields := configFields(typ)
	if typ == nil || typ.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s: the transport's Config is %v, not a struct", prefix, typ)
	}
	out := reflect.New(typ)
	var file map[string]any
	switch x := sub.(type) {
	case nil:
	case map[string]any:
		file = x
	default:
		return nil, l.fail(prefix, sub, "an object of settings")
	}
	values := map[string]any{}
	for k, v := range file {
		i := slices.IndexFunc(fields, func(f field) bool { return squash(f.key) == squash(k) })
		if i < 0 {
			known := make([]string, len(fields))
			for j, f := range fields {
				known[j] = f.key
			}
			return nil, fmt.Errorf("%s.%s: unknown key (%s); %s has %s", prefix, k, l.source(prefix+"."+k), name, strings.Join(known, ", "))
		}
		values[fields[i].key] = v
	}
	set := map[string]bool{}
	for _, f := range fields {
		key := prefix + "." + f.key
		v := values[f.key]
		if x := l.v.Get(key); x != nil { // the environment, or the file's own spelling
			v = x
		}
		if v == nil {
			continue
		}
		set[f.key] = true
		if err := l.decode(key, wantOf(f.typ), v, out.Elem().Field(f.index).Addr().Interface()); err != nil {
			return nil, err
		}
	}
	if val, ok := out.Interface().(validator); ok {
		if err := val.Validate(); err != nil {
			// Name the key when the error names its field.
			for _, f := range fields {
				if set[f.key] && strings.Contains(err.Error(), typ.Field(f.index).Name+" ") {
					key := prefix + "." + f.key
					return nil, fmt.Errorf("%s: %w (%s)", key, err, l.source(key))
				}
			}
			return nil, fmt.Errorf("%s: %w", prefix, err)
		}
	}
	return out.Elem().Interface(), nil
}

// wantOf says what a field of type t takes.
func wantOf(t reflect.Type) string {
	switch {
	case t == durationType:
		return wantDuration
	case t.Kind() == reflect.Bool:
		return "true or false"
	case isInt(t.Kind()):
		return "a whole number"
	case isUint(t.Kind()):
		return "a whole number, 0 or more"
	case t.Kind() == reflect.String:
		return wantString
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "a list of strings (env: comma-separated)"
	}
	return "a " + t.String()
}
