package settings

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/sdk"
)

// DefaultFile is where the legacy connector kept its settings.
const DefaultFile = "/etc/iofog-connector/iofog-connector.conf"

// EnvPrefix starts every environment variable of a setting: key
// public-wait-timeout is IOFOG_CONNECTOR_PUBLIC_WAIT_TIMEOUT ("-" and "."
// become "_").
const EnvPrefix = "IOFOG_CONNECTOR"

// Dev defaults, used when there is no settings file.
const (
	DevAPIAddress = "127.0.0.1:8080"
	DevPorts      = "7000-7999"
	// DevMetricsAddress is where the metrics are served on the built-in
	// dev defaults: loopback, off the API's 8080 and the ports 7000-7999.
	DevMetricsAddress = "127.0.0.1:9478"
)

// MetricsOff is the metrics-address value that turns the metrics off where
// they default to on (dev defaults); empty does too.
const MetricsOff = "off"

// Settings is the validated configuration of the daemon.
type Settings struct {
	File              string // settings file read; empty when on dev defaults
	DevDefaults       bool   // no settings file: built-in dev defaults
	Dev               bool
	Pool              []int
	Broker            int
	Address           string
	APIAddress        string
	BindHost          string
	DataDir           string
	Transport         string
	PluginDir         string
	PublicWaitTimeout time.Duration
	TLSCert, TLSKey   string
	LogLevel          slog.Level
	LogFile           string // empty: stderr
	// API lock: a bearer token, given or read from a file ([Settings.Token]),
	// and a CA file for client certificates ([Settings.ClientCAs]).
	APIToken, APITokenFile, APIClientCA string

	// MetricsAddress is where /metrics is served; empty: off.
	MetricsAddress string

	// PublicMaxWaiting and PublicMaxWaitingPerSource cap the public
	// clients waiting for an agent link per mapping (0: relay defaults).
	PublicMaxWaiting, PublicMaxWaitingPerSource int

	// Transports holds the transports.<name> subtrees and plugins.*.
	Transports Transports
}

// Source says where [Load] and [LoadTransports] read.
type Source struct {
	// Flags are the command's flags. A flag named like a key sets it
	// (--plugin-dir sets plugins.dir); --config names the settings file.
	// Nil means no flags.
	Flags *pflag.FlagSet
	// DefaultFile is read when neither --config nor IOFOG_CONNECTOR_CONFIG
	// names a settings file; a missing DefaultFile is no error ([Load]
	// then runs on dev defaults). Empty means no settings file unless one
	// is named.
	DefaultFile string
	// Transports maps each built-in transport's name to its zero Config
	// value (a struct, such as tcp.Config{}); transports.<name> is decoded
	// into a copy of it. Nil means none.
	Transports map[string]any
}

// flagKey is the key a flag sets: its name, but for --plugin-dir.
func flagKey(name string) string {
	if name == "plugin-dir" {
		return "plugins.dir"
	}
	return name
}

// loader is one load: viper's layers and where each key came from.
type loader struct {
	v    *viper.Viper
	fs   *pflag.FlagSet
	file string            // absolute path of the settings file read; "" for none
	keys map[string]string // key -> flag name, for the keys flags set
}

// open layers the flags, the environment and the settings file of src.
// keys are the keys read; only their flags are bound.
func open(src Source, keys []string) (*loader, error) {
	l := &loader{v: viper.New(), fs: src.Flags, keys: map[string]string{}}
	v := l.v
	v.SetConfigType("json")
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	wanted := map[string]bool{"config": true}
	for _, k := range keys {
		wanted[k] = true
		if err := v.BindEnv(k); err != nil {
			return nil, err
		}
	}
	if src.Flags != nil {
		var err error
		src.Flags.VisitAll(func(f *pflag.Flag) {
			key := flagKey(f.Name)
			if !wanted[key] || err != nil {
				return
			}
			l.keys[key] = f.Name
			err = v.BindPFlag(key, f)
		})
		if err != nil {
			return nil, err
		}
	}
	path := v.GetString("config")
	explicit := path != ""
	if !explicit {
		path = src.DefaultFile
	}
	if path == "" {
		return l, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := v.ReadConfig(strings.NewReader(string(b))); err != nil {
			return nil, fmt.Errorf("settings file %s is not valid JSON: %v", path, err)
		}
		l.file, _ = filepath.Abs(path)
	case explicit || !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("settings file: %w", err)
	}
	return l, nil
}

// source says where key's value comes from, for error messages.
func (l *loader) source(key string) string {
	if name, ok := l.keys[key]; ok && l.fs != nil {
		if f := l.fs.Lookup(name); f != nil && f.Changed {
			return "flag --" + name
		}
	}
	env := EnvName(key)
	if x, ok := os.LookupEnv(env); ok && x != "" {
		return "environment " + env
	}
	if l.file != "" && l.v.InConfig(key) {
		return "settings file " + l.file
	}
	return "default"
}

// set reports whether key was given rather than defaulted.
func (l *loader) set(key string) bool { return l.source(key) != "default" }

// EnvName is the environment variable of key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(key))
}

// fail is an error about key's value that is not what is expected.
func (l *loader) fail(key string, value any, want string) error {
	return fmt.Errorf("%s: %s is not %s (%s)", key, quote(value), want, l.source(key))
}

// failf is another error about key.
func (l *loader) failf(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s (%s)", key, fmt.Sprintf(format, args...), l.source(key))
}

// raw is what the keys decode into, before the checks that tie keys
// together.
type raw struct {
	Dev                       bool
	Ports, Exclude            Ranges
	Broker                    int
	Address, Bind             string
	APIAddress, API           string
	DataDir, Transport        string
	PluginDir                 string
	Checksums                 Checksums
	PublicWaitTimeout         time.Duration
	PublicMaxWaiting          int
	PublicMaxWaitingPerSource int
	LogLevel                  slog.Level
	LogFile, TLSCert, TLSKey  string
	APIToken, APITokenFile    string
	APIClientCA               string
	MetricsAddress            string
}

// Key describes a setting of the daemon.
type Key struct {
	// Name is the key in the settings file.
	Name string
	// Want says what a value must be, for error messages.
	Want string
	dst  func(*raw) any
}

const (
	wantString   = "a string"
	wantDuration = `a duration such as "5s" or a number of milliseconds`
	wantRanges   = "a list of ports or ranges"
)

// Keys lists every top-level key of the daemon's settings, in the order
// they are read. transports.<name> subtrees come on top.
func Keys() []Key {
	return []Key{
		{Name: "dev", Want: "true or false", dst: func(r *raw) any { return &r.Dev }},
		{Name: "ports", Want: wantRanges, dst: func(r *raw) any { return &r.Ports }},
		{Name: "exclude", Want: wantRanges, dst: func(r *raw) any { return &r.Exclude }},
		{Name: "broker", Want: "a number from 0 to 65535", dst: func(r *raw) any { return &r.Broker }},
		{Name: "address", Want: wantString, dst: func(r *raw) any { return &r.Address }},
		{Name: "bind", Want: "an IP address", dst: func(r *raw) any { return &r.Bind }},
		{Name: "api-address", Want: "HOST:PORT", dst: func(r *raw) any { return &r.APIAddress }},
		{Name: "api", Want: "HOST:PORT", dst: func(r *raw) any { return &r.API }},
		{Name: "data-dir", Want: wantString, dst: func(r *raw) any { return &r.DataDir }},
		{Name: "transport", Want: "a transport name", dst: func(r *raw) any { return &r.Transport }},
		{Name: "plugins.dir", Want: wantString, dst: func(r *raw) any { return &r.PluginDir }},
		{Name: "plugins.checksums", Want: checksumsWant, dst: func(r *raw) any { return &r.Checksums }},
		{Name: "public-wait-timeout", Want: wantDuration, dst: func(r *raw) any { return &r.PublicWaitTimeout }},
		{Name: "public-max-waiting", Want: "a number from 0 to 1048576", dst: func(r *raw) any { return &r.PublicMaxWaiting }},
		{Name: "public-max-waiting-per-source", Want: "a number from 0 to 1048576", dst: func(r *raw) any { return &r.PublicMaxWaitingPerSource }},
		{Name: "log-level", Want: "debug, info, warn or error", dst: func(r *raw) any { return &r.LogLevel }},
		{Name: "log-file", Want: wantString, dst: func(r *raw) any { return &r.LogFile }},
		{Name: "tls-cert", Want: wantString, dst: func(r *raw) any { return &r.TLSCert }},
		{Name: "tls-key", Want: wantString, dst: func(r *raw) any { return &r.TLSKey }},
		{Name: "api-token", Want: wantString, dst: func(r *raw) any { return &r.APIToken }},
		{Name: "api-token-file", Want: wantString, dst: func(r *raw) any { return &r.APITokenFile }},
		{Name: "api-client-ca", Want: wantString, dst: func(r *raw) any { return &r.APIClientCA }},
		{Name: "metrics-address", Want: `HOST:PORT (or "off")`, dst: func(r *raw) any { return &r.MetricsAddress }},
	}
}

func keyNames(keys []Key) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	return names
}

// decodeKeys decodes each key's layered value into r.
func (l *loader) decodeKeys(keys []Key, r *raw) error {
	for _, k := range keys {
		if err := l.decode(k.Name, k.Want, l.v.Get(k.Name), k.dst(r)); err != nil {
			return err
		}
	}
	return nil
}

// Load reads the settings file, then IOFOG_CONNECTOR_* variables, then
// flags, and validates the result. With no settings file (none named and
// src.DefaultFile missing) it runs on the dev defaults.
func Load(src Source) (*Settings, error) {
	keys := Keys()
	l, err := open(src, append(keyNames(keys), transportKeys(src.Transports)...))
	if err != nil {
		return nil, err
	}
	s := &Settings{File: l.file, DevDefaults: l.file == ""}
	v := l.v
	// viper's defaults; those that depend on other keys are set below.
	v.SetDefault("dev", s.DevDefaults)
	v.SetDefault("transport", "tcp")
	v.SetDefault("log-level", "info")
	if s.DevDefaults {
		v.SetDefault("ports", []string{DevPorts})
		v.SetDefault("metrics-address", DevMetricsAddress)
	}
	var r raw
	if err := l.decodeKeys(keys, &r); err != nil {
		return nil, err
	}
	if err := s.check(l, &r); err != nil {
		return nil, err
	}
	if s.Transports, err = l.transports(src.Transports); err != nil {
		return nil, err
	}
	s.Transports.PluginDir, s.Transports.PluginChecksums = r.PluginDir, r.Checksums.sums()
	return s, nil
}

// check validates r and fills s.
func (s *Settings) check(l *loader, r *raw) error {
	s.Dev = r.Dev
	if len(r.Ports) == 0 {
		return l.failf("ports", "no port range is configured")
	}
	if s.Pool = ports.Pool(r.Ports, r.Exclude); len(s.Pool) < 2 {
		return l.failf("ports", "%d ports left after exclude; mappings need at least 2", len(s.Pool))
	}
	if r.Broker < 0 || r.Broker > 65535 {
		return l.fail("broker", r.Broker, "a number from 0 to 65535")
	}
	s.Broker = r.Broker
	s.Address = r.Address
	if s.BindHost = r.Bind; s.BindHost != "" && net.ParseIP(s.BindHost) == nil {
		return l.fail("bind", s.BindHost, "an IP address")
	}
	key := "api-address"
	s.APIAddress = r.APIAddress
	if s.APIAddress == "" && r.API != "" {
		key, s.APIAddress = "api", r.API // short form accepted in the settings file
	}
	switch {
	case s.APIAddress != "":
		if !hostPort(s.APIAddress) {
			return l.fail(key, s.APIAddress, "HOST:PORT")
		}
	case s.DevDefaults:
		s.APIAddress = DevAPIAddress
	case s.Dev:
		s.APIAddress = ":8080"
	default:
		s.APIAddress = ":443"
	}
	var err error
	if s.DataDir, err = dataDir(r.DataDir, s.File); err != nil {
		return l.failf("data-dir", "%v", err)
	}
	if s.Transport = r.Transport; !sdk.ValidName(s.Transport) {
		return l.fail("transport", s.Transport, "a transport name")
	}
	s.PluginDir = r.PluginDir
	s.PublicWaitTimeout = r.PublicWaitTimeout
	for _, n := range []struct {
		key string
		v   int
		dst *int
	}{
		{"public-max-waiting", r.PublicMaxWaiting, &s.PublicMaxWaiting},
		{"public-max-waiting-per-source", r.PublicMaxWaitingPerSource, &s.PublicMaxWaitingPerSource},
	} {
		if n.v < 0 || n.v > 1<<20 {
			return l.fail(n.key, n.v, "a number from 0 to 1048576")
		}
		*n.dst = n.v
	}
	s.LogLevel = r.LogLevel
	s.LogFile = r.LogFile
	base := filepath.Dir(s.File)
	s.TLSCert, s.TLSKey = r.TLSCert, r.TLSKey
	if s.TLSCert == "" {
		s.TLSCert = filepath.Join(base, "server-cert.pem")
	}
	if s.TLSKey == "" {
		s.TLSKey = filepath.Join(base, "server-key.pem")
	}
	addr := strings.TrimSpace(r.MetricsAddress)
	if strings.EqualFold(addr, MetricsOff) {
		addr = ""
	}
	if addr != "" && !hostPort(addr) {
		return l.fail("metrics-address", addr, `HOST:PORT (or "off")`)
	}
	s.MetricsAddress = addr
	return s.checkAPIAuth(l, r)
}

// checkAPIAuth checks the settings of the API lock. Files are only read by
// the daemon ([Settings.Token] at start and on reload, [Settings.ClientCAs]
// at start), so that the CLI commands sharing these settings need not.
func (s *Settings) checkAPIAuth(l *loader, r *raw) error {
	// An empty string that was set is an error, not "unset": a lock that
	// was asked for and could not be read must not silently be off.
	for _, k := range []struct {
		key string
		v   string
	}{{"api-token", r.APIToken}, {"api-token-file", r.APITokenFile}, {"api-client-ca", r.APIClientCA}} {
		if k.v == "" && l.set(k.key) {
			return fmt.Errorf("%s: is empty; remove the setting to leave it off (%s)", k.key, l.source(k.key))
		}
	}
	s.APIToken, s.APITokenFile, s.APIClientCA = r.APIToken, r.APITokenFile, r.APIClientCA
	switch {
	case s.APIToken != "" && s.APITokenFile != "":
		return fmt.Errorf("api-token and api-token-file: both are set (%s; %s); give one", l.source("api-token"), l.source("api-token-file"))
	case s.APIToken != "":
		if err := CheckAPIToken(s.APIToken); err != nil {
			return fmt.Errorf("api-token: %w (%s)", err, l.source("api-token"))
		}
	}
	if s.APIClientCA != "" && s.Dev {
		return fmt.Errorf("api-client-ca: client certificates need the HTTPS API, but dev is true (plain HTTP); unset one of them (%s; dev: %s)",
			l.source("api-client-ca"), l.source("dev"))
	}
	return nil
}

func hostPort(s string) bool {
	_, p, err := net.SplitHostPort(s)
	return err == nil && p != ""
}

func dataDir(d, file string) (string, error) {
	if d != "" {
		return filepath.Abs(d)
	}
	if file != "" {
		return filepath.Dir(file), nil
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "iofog-connector"), nil
	}
	return filepath.Join(os.TempDir(), "iofog-connector-"+strconv.Itoa(os.Getuid())), nil
}

func quote(x any) string {
	if s, ok := x.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(x)
}
