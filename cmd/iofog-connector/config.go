package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/sdk"
)

// defaultSettingsFile is where the legacy connector kept its settings.
const defaultSettingsFile = "/etc/iofog-connector/iofog-connector.conf"

// Dev defaults, used when there is no settings file.
const (
	devAPIAddress = "127.0.0.1:8080"
	devPorts      = "7000-7999"
)

// settings is the validated configuration of the daemon.
type settings struct {
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
	// API lock (apiauth.go): a bearer token, given or read from a file at
	// start, and a CA file for client certificates.
	APIToken, APITokenFile, APIClientCA string

	// MetricsAddress is where /metrics is served (metrics.go); empty:
	// off.
	MetricsAddress string

	// PublicMaxWaiting and PublicMaxWaitingPerSource cap the public
	// clients waiting for an agent link per mapping (0: relay defaults).
	PublicMaxWaiting, PublicMaxWaitingPerSource int
}

// addConfigFlags declares the flags every daemon-facing command shares.
func addConfigFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "settings file (default "+defaultSettingsFile+"; env IOFOG_CONNECTOR_CONFIG)")
	fs.String("data-dir", "", "directory of configs.json and the control socket (default: the settings file's directory)")
	fs.String("api-address", "", "HOST:PORT of the REST API (default :8080 in dev mode, :443 otherwise; 127.0.0.1:8080 on dev defaults)")
	addAPIAuthFlags(fs)
	addMetricsFlags(fs)
}

// loadSettings reads the settings file, then IOFOG_CONNECTOR_* variables,
// then flags, and validates the result. Errors name the key and value.
func loadSettings(fs *pflag.FlagSet) (*settings, error) {
	v := viper.New()
	v.SetConfigType("json")
	v.SetEnvPrefix("IOFOG_CONNECTOR")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	for _, key := range []string{"config", "data-dir", "api-address", "metrics-address"} {
		if f := fs.Lookup(key); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return nil, err
			}
		}
	}
	if err := bindAPIAuthFlags(v, fs); err != nil {
		return nil, err
	}
	s := &settings{}
	path := v.GetString("config")
	explicit := path != ""
	if !explicit {
		path = defaultSettingsFile
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := v.ReadConfig(strings.NewReader(string(b))); err != nil {
			return nil, fmt.Errorf("settings file %s is not valid JSON: %v", path, err)
		}
		s.File, _ = filepath.Abs(path)
	case explicit || !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("settings file: %w", err)
	default:
		s.DevDefaults = true
	}
	return s, s.fill(v)
}

func (s *settings) fill(v *viper.Viper) error {
	var err error
	if s.Dev, err = boolKey(v, "dev", s.DevDefaults); err != nil {
		return err
	}
	include, err := rangesKey(v, "ports", s.DevDefaults)
	if err != nil {
		return err
	}
	exclude, err := rangesKey(v, "exclude", false)
	if err != nil {
		return err
	}
	if len(include) == 0 {
		return errors.New("ports: no port range is configured")
	}
	if s.Pool = ports.Pool(include, exclude); len(s.Pool) < 2 {
		return fmt.Errorf("ports: %d ports left after exclude; mappings need at least 2", len(s.Pool))
	}
	if s.Broker, err = intKey(v, "broker", 0, 65535); err != nil {
		return err
	}
	s.Address = v.GetString("address")
	s.BindHost = v.GetString("bind")
	if s.BindHost != "" && net.ParseIP(s.BindHost) == nil {
		return fmt.Errorf("bind: %q is not an IP address", s.BindHost)
	}
	s.APIAddress = v.GetString("api-address")
	if s.APIAddress == "" {
		s.APIAddress = v.GetString("api") // short form accepted in the settings file
	}
	switch {
	case s.APIAddress != "":
	case s.DevDefaults:
		s.APIAddress = devAPIAddress
	case s.Dev:
		s.APIAddress = ":8080"
	default:
		s.APIAddress = ":443"
	}
	if _, p, err := net.SplitHostPort(s.APIAddress); err != nil || p == "" {
		return fmt.Errorf("api-address: %q is not HOST:PORT", s.APIAddress)
	}
	if s.DataDir, err = dataDir(v, s.File); err != nil {
		return err
	}
	s.Transport = v.GetString("transport")
	if s.Transport == "" {
		s.Transport = "tcp"
	}
	if !sdk.ValidName(s.Transport) {
		return fmt.Errorf("transport: %q is not a transport name", s.Transport)
	}
	s.PluginDir = v.GetString("plugins.dir")
	if s.PublicWaitTimeout, err = durationKey(v, "public-wait-timeout"); err != nil {
		return err
	}
	if s.PublicMaxWaiting, err = intKey(v, "public-max-waiting", 0, 1<<20); err != nil {
		return err
	}
	if s.PublicMaxWaitingPerSource, err = intKey(v, "public-max-waiting-per-source", 0, 1<<20); err != nil {
		return err
	}
	if s.LogLevel, err = levelKey(v, "log-level"); err != nil {
		return err
	}
	s.LogFile = v.GetString("log-file")
	base := filepath.Dir(s.File)
	s.TLSCert, s.TLSKey = v.GetString("tls-cert"), v.GetString("tls-key")
	if s.TLSCert == "" {
		s.TLSCert = filepath.Join(base, "server-cert.pem")
	}
	if s.TLSKey == "" {
		s.TLSKey = filepath.Join(base, "server-key.pem")
	}
	if err := s.fillMetrics(v); err != nil {
		return err
	}
	return s.fillAPIAuth(v)
}

// tlsConfig loads the server identity; nil in dev mode.
func (s *settings) tlsConfig() (*tls.Config, error) {
	if s.Dev {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls-cert/tls-key: %q and %q: %v", s.TLSCert, s.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func dataDir(v *viper.Viper, file string) (string, error) {
	if d := v.GetString("data-dir"); d != "" {
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

func boolKey(v *viper.Viper, key string, def bool) (bool, error) {
	raw := v.Get(key)
	if raw == nil {
		return def, nil
	}
	b, err := cast.ToBoolE(raw)
	if err != nil {
		return false, fmt.Errorf("%s: %s is not true or false", key, quote(raw))
	}
	return b, nil
}

func intKey(v *viper.Viper, key string, lo, hi int) (int, error) {
	raw := v.Get(key)
	if raw == nil {
		return 0, nil
	}
	n, err := cast.ToIntE(raw)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: %s is not a number from %d to %d", key, quote(raw), lo, hi)
	}
	return n, nil
}

// rangesKey reads a list of "N" or "A-B"; from the environment it is a
// comma-separated string.
func rangesKey(v *viper.Viper, key string, dev bool) ([]ports.Range, error) {
	raw := v.Get(key)
	var items []any
	switch x := raw.(type) {
	case nil:
		if dev && key == "ports" {
			items = []any{devPorts}
		}
	case []any:
		items = x
	case []string:
		for _, s := range x {
			items = append(items, s)
		}
	case string:
		for _, s := range strings.Split(x, ",") {
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("%s: %s is not a list of ports or ranges", key, quote(raw))
	}
	var out []ports.Range
	for i, it := range items {
		var text string
		switch x := it.(type) {
		case string:
			text = x
		case float64, int, int64:
			text = fmt.Sprint(x)
		default:
			return nil, fmt.Errorf("%s[%d]: %s is not a port or a range", key, i, quote(it))
		}
		r, err := ports.ParseSpec(text)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q is not a port or a range", key, i, text)
		}
		out = append(out, r)
	}
	return out, nil
}

// durationKey reads "5s"-style text or a number of milliseconds.
func durationKey(v *viper.Viper, key string) (time.Duration, error) {
	raw := v.Get(key)
	if raw == nil {
		return 0, nil
	}
	bad := fmt.Errorf("%s: %s is not a duration such as \"5s\" or a number of milliseconds", key, quote(raw))
	switch x := raw.(type) {
	case string:
		if ms, err := strconv.Atoi(x); err == nil && ms >= 0 {
			return time.Duration(ms) * time.Millisecond, nil
		}
		d, err := time.ParseDuration(x)
		if err != nil || d < 0 {
			return 0, bad
		}
		return d, nil
	default:
		ms, err := cast.ToInt64E(x)
		if err != nil || ms < 0 {
			return 0, bad
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
}

func levelKey(v *viper.Viper, key string) (slog.Level, error) {
	raw := v.GetString(key)
	if raw == "" {
		return slog.LevelInfo, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(raw)); err != nil {
		return 0, fmt.Errorf("%s: %q is not debug, info, warn or error", key, raw)
	}
	return l, nil
}

func quote(x any) string {
	if s, ok := x.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(x)
}
