package settings

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// daemonFlags declares the flags the daemon's commands have.
func daemonFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, name := range []string{"config", "data-dir", "api-address", "api-token-file", "api-client-ca", "metrics-address"} {
		fs.String(name, "", "")
	}
	return fs
}

// loadFile writes body as the settings file and loads it with args.
func loadFile(t *testing.T, body string, args ...string) (*Settings, string, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "iofog-connector.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := daemonFlags()
	if err := fs.Parse(append([]string{"--config", p}, args...)); err != nil {
		t.Fatal(err)
	}
	s, err := Load(Source{Flags: fs, DefaultFile: filepath.Join(dir, "none.conf"), Transports: testProtos()})
	return s, p, err
}

const minimal = `{"ports":["7000-7010"]`

// keyCase is one key: a value in the file (JSON) and what it gives, and
// its default with a settings file.
type keyCase struct {
	key       string
	json      string // the value in the file
	got       func(*Settings) any
	want      any
	wantDef   any // with a settings file that does not name the key
	env       string
	wantEnv   any
	needsDev  *bool // the file's dev, when the key needs one
	notInFile bool
}

func keyCases(dir string) []keyCase {
	no := false
	return []keyCase{
		{key: "dev", json: `true`, got: func(s *Settings) any { return s.Dev }, want: true, wantDef: false, env: "1", wantEnv: true},
		{key: "ports", json: `["7000-7002",7005]`, got: func(s *Settings) any { return s.Pool }, want: []int{7000, 7001, 7002, 7005}, wantDef: nil,
			env: "8000-8001,8003", wantEnv: []int{8000, 8001, 8003}},
		{key: "exclude", json: `["7001",7002]`, got: func(s *Settings) any { return len(s.Pool) }, want: 9, wantDef: 11, env: "7000-7004", wantEnv: 6},
		{key: "broker", json: `12345`, got: func(s *Settings) any { return s.Broker }, want: 12345, wantDef: 0, env: "54321", wantEnv: 54321},
		{key: "address", json: `"c.example"`, got: func(s *Settings) any { return s.Address }, want: "c.example", wantDef: "", env: "e.example", wantEnv: "e.example"},
		{key: "bind", json: `"::1"`, got: func(s *Settings) any { return s.BindHost }, want: "::1", wantDef: "", env: "127.0.0.1", wantEnv: "127.0.0.1"},
		{key: "api-address", json: `"127.0.0.1:9443"`, got: func(s *Settings) any { return s.APIAddress }, want: "127.0.0.1:9443", wantDef: ":443", env: ":8443", wantEnv: ":8443"},
		{key: "api", json: `"127.0.0.1:9444"`, got: func(s *Settings) any { return s.APIAddress }, want: "127.0.0.1:9444", wantDef: ":443", env: ":8444", wantEnv: ":8444"},
		{key: "data-dir", json: `"` + filepath.Join(dir, "d") + `"`, got: func(s *Settings) any { return s.DataDir }, want: filepath.Join(dir, "d"), wantDef: "FILEDIR",
			env: filepath.Join(dir, "e"), wantEnv: filepath.Join(dir, "e")},
		{key: "transport", json: `"yamux"`, got: func(s *Settings) any { return s.Transport }, want: "yamux", wantDef: "tcp", env: "quic", wantEnv: "quic"},
		{key: "plugins.dir", json: `"/p"`, got: func(s *Settings) any { return s.PluginDir }, want: "/p", wantDef: "", env: "/q", wantEnv: "/q"},
		{key: "plugins.checksums", json: `{"iofog-transport-x":"` + strings.Repeat("ab", 32) + `"}`,
			got: func(s *Settings) any { return len(s.Transports.PluginChecksums["iofog-transport-x"]) }, want: 32, wantDef: 0,
			env: "iofog-transport-x=" + strings.Repeat("cd", 32), wantEnv: 32},
		{key: "public-wait-timeout", json: `"1.5s"`, got: func(s *Settings) any { return s.PublicWaitTimeout }, want: 1500 * time.Millisecond, wantDef: time.Duration(0),
			env: "250", wantEnv: 250 * time.Millisecond},
		{key: "public-max-waiting", json: `100`, got: func(s *Settings) any { return s.PublicMaxWaiting }, want: 100, wantDef: 0, env: "7", wantEnv: 7},
		{key: "public-max-waiting-per-source", json: `10`, got: func(s *Settings) any { return s.PublicMaxWaitingPerSource }, want: 10, wantDef: 0, env: "3", wantEnv: 3},
		{key: "log-level", json: `"debug"`, got: func(s *Settings) any { return s.LogLevel }, want: slog.LevelDebug, wantDef: slog.LevelInfo, env: "WARN", wantEnv: slog.LevelWarn},
		{key: "log-file", json: `"/var/log/c.log"`, got: func(s *Settings) any { return s.LogFile }, want: "/var/log/c.log", wantDef: "", env: "/tmp/c.log", wantEnv: "/tmp/c.log"},
		{key: "tls-cert", json: `"/c.pem"`, got: func(s *Settings) any { return s.TLSCert }, want: "/c.pem", wantDef: "FILEDIR/server-cert.pem", env: "/e.pem", wantEnv: "/e.pem"},
		{key: "tls-key", json: `"/k.pem"`, got: func(s *Settings) any { return s.TLSKey }, want: "/k.pem", wantDef: "FILEDIR/server-key.pem", env: "/e.key", wantEnv: "/e.key"},
		{key: "api-token", json: `"0123456789abcdef"`, got: func(s *Settings) any { return s.APIToken }, want: "0123456789abcdef", wantDef: "",
			env: "fedcba9876543210", wantEnv: "fedcba9876543210"},
		{key: "api-token-file", json: `"/t"`, got: func(s *Settings) any { return s.APITokenFile }, want: "/t", wantDef: "", env: "/u", wantEnv: "/u"},
		{key: "api-client-ca", json: `"/ca.pem"`, got: func(s *Settings) any { return s.APIClientCA }, want: "/ca.pem", wantDef: "", env: "/ca2.pem", wantEnv: "/ca2.pem", needsDev: &no},
		{key: "metrics-address", json: `"127.0.0.1:9100"`, got: func(s *Settings) any { return s.MetricsAddress }, want: "127.0.0.1:9100", wantDef: "",
			env: "off", wantEnv: ""},
	}
}

// setKey returns the settings file minimal with key set to val (JSON).
func setKey(key, val string) string {
	if parent, child, ok := strings.Cut(key, "."); ok {
		return minimal + `,"` + parent + `":{"` + child + `":` + val + `}}`
	}
	return minimal + `,"` + key + `":` + val + `}`
}

// TestSettingsEveryKey: every key of Keys is parsed from the settings file
// and from its environment variable, and has its default when absent;
// the cases cover every key.
func TestSettingsEveryKey(t *testing.T) {
	dir := t.TempDir()
	cases := keyCases(dir)
	var covered []string
	for _, c := range cases {
		covered = append(covered, c.key)
	}
	for _, k := range Keys() {
		if !slices.Contains(covered, k.Name) {
			t.Errorf("key %s has no test case", k.Name)
		}
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			s, p, err := loadFile(t, setKey(c.key, c.json))
			if err != nil {
				t.Fatalf("from the file: %v", err)
			}
			if got := c.got(s); !reflect.DeepEqual(got, c.want) {
				t.Errorf("from the file: %v, want %v", got, c.want)
			}
			s, p, err = loadFile(t, minimal+`}`)
			if err != nil {
				t.Fatal(err)
			}
			want := c.wantDef
			if w, ok := want.(string); ok {
				want = strings.ReplaceAll(w, "FILEDIR", filepath.Dir(p))
			}
			if c.key == "ports" {
				want = []int{7000, 7001, 7002, 7003, 7004, 7005, 7006, 7007, 7008, 7009, 7010}
			}
			if got := c.got(s); !reflect.DeepEqual(got, want) {
				t.Errorf("default: %v, want %v", got, want)
			}
			body := minimal + `}`
			if c.needsDev != nil {
				body = minimal + `,"dev":false}`
			}
			t.Setenv(EnvName(c.key), c.env)
			s, _, err = loadFile(t, body)
			if err != nil {
				t.Fatalf("from %s: %v", EnvName(c.key), err)
			}
			if got := c.got(s); !reflect.DeepEqual(got, c.wantEnv) {
				t.Errorf("from %s=%q: %v, want %v", EnvName(c.key), c.env, got, c.wantEnv)
			}
		})
	}
}

// TestSettingsPrecedence: a flag beats the environment, which beats the
// settings file, which beats the default, for every key with a flag; and
// the environment beats the file for every key.
func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	flagged := map[string]string{"api-address": "[::1]:7443", "data-dir": filepath.Join(dir, "flag"), "metrics-address": "[::1]:9200",
		"api-token-file": "/flag-token", "api-client-ca": "/flag-ca.pem"}
	for _, c := range keyCases(dir) {
		t.Run(c.key, func(t *testing.T) {
			body := setKey(c.key, c.json)
			if c.needsDev != nil {
				body = strings.TrimSuffix(body, "}") + `,"dev":false}`
			}
			t.Setenv(EnvName(c.key), c.env)
			s, _, err := loadFile(t, body)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.got(s); !reflect.DeepEqual(got, c.wantEnv) {
				t.Errorf("env over file: %v, want %v", got, c.wantEnv)
			}
			fv, ok := flagged[c.key]
			if !ok {
				return
			}
			s, _, err = loadFile(t, body, "--"+c.key, fv)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.got(s); got != fv {
				t.Errorf("flag over env and file: %v, want %v", got, fv)
			}
		})
	}
	// The default is beaten by the file (TestSettingsEveryKey) and by a
	// flag alone.
	s, _, err := loadFile(t, minimal+`}`, "--api-address", "127.0.0.1:1")
	if err != nil || s.APIAddress != "127.0.0.1:1" {
		t.Fatalf("flag over default: %v %v", s, err)
	}
}

// TestSettingsErrors: each wrong value names the key, the value, where it
// came from and what is expected.
func TestSettingsErrors(t *testing.T) {
	const file = "settings file FILE"
	for _, tt := range []struct {
		name string
		body string
		env  map[string]string
		args []string
		want string
	}{
		{"not json", `{"ports":`, nil, nil, "settings file FILE is not valid JSON"},
		{"dev", `{"ports":["7000-7010"],"dev":"maybe"}`, nil, nil, `dev: "maybe" is not true or false (` + file + `)`},
		{"dev number", `{"ports":["7000-7010"],"dev":2}`, nil, nil, `dev: 2 is not true or false (` + file + `)`},
		{"dev env", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_DEV": "yes"}, nil, `dev: "yes" is not true or false (environment IOFOG_CONNECTOR_DEV)`},
		{"ports element", `{"ports":["7000-7010","7000-"]}`, nil, nil, `ports[1]: "7000-" is not a port or a range (` + file + `)`},
		{"ports number", `{"ports":[7000.5]}`, nil, nil, `ports[0]: 7000.5 is not a port or a range (` + file + `)`},
		{"ports object", `{"ports":{"a":1}}`, nil, nil, `ports: map[a:1] is not a list of ports or ranges (` + file + `)`},
		{"ports env", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_PORTS": "9000-8000"}, nil, `ports[0]: "9000-8000" is not a port or a range (environment IOFOG_CONNECTOR_PORTS)`},
		{"ports empty", `{"ports":[]}`, nil, nil, `ports: no port range is configured (` + file + `)`},
		{"ports missing", `{}`, nil, nil, `ports: no port range is configured (default)`},
		{"ports too few", `{"ports":["7000-7001"],"exclude":["7001"]}`, nil, nil, `ports: 1 ports left after exclude; mappings need at least 2 (` + file + `)`},
		{"exclude", `{"ports":["7000-7010"],"exclude":["x"]}`, nil, nil, `exclude[0]: "x" is not a port or a range (` + file + `)`},
		{"broker range", minimal + `,"broker":70000}`, nil, nil, `broker: 70000 is not a number from 0 to 65535 (` + file + `)`},
		{"broker fraction", minimal + `,"broker":1.5}`, nil, nil, `broker: 1.5 is not a number from 0 to 65535 (` + file + `)`},
		{"broker text", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_BROKER": "many"}, nil, `broker: "many" is not a number from 0 to 65535 (environment IOFOG_CONNECTOR_BROKER)`},
		{"address", minimal + `,"address":5}`, nil, nil, `address: 5 is not a string (` + file + `)`},
		{"bind", minimal + `,"bind":"somewhere"}`, nil, nil, `bind: "somewhere" is not an IP address (` + file + `)`},
		{"api-address flag", minimal + `}`, nil, []string{"--api-address", "nowhere"}, `api-address: "nowhere" is not HOST:PORT (flag --api-address)`},
		{"api", minimal + `,"api":"x"}`, nil, nil, `api: "x" is not HOST:PORT (` + file + `)`},
		{"data-dir", minimal + `,"data-dir":["a"]}`, nil, nil, `data-dir: [a] is not a string (` + file + `)`},
		{"transport", minimal + `,"transport":"Not A Name"}`, nil, nil, `transport: "Not A Name" is not a transport name (` + file + `)`},
		{"plugins.dir", minimal + `,"plugins":{"dir":1}}`, nil, nil, `plugins.dir: 1 is not a string (` + file + `)`},
		{"plugins.checksums sum", minimal + `,"plugins":{"checksums":{"iofog-transport-x":"abc"}}}`, nil, nil,
			`plugins.checksums: "abc" is not a SHA-256 sum (64 hex digits) for "iofog-transport-x" (` + file + `)`},
		{"plugins.checksums env", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_PLUGINS_CHECKSUMS": "nonsense"}, nil,
			`plugins.checksums: "nonsense" is not NAME=HEX (environment IOFOG_CONNECTOR_PLUGINS_CHECKSUMS)`},
		{"plugins.checksums not text", minimal + `,"plugins":{"checksums":{"iofog-transport-x":1}}}`, nil, nil,
			`plugins.checksums: 1 is not a SHA-256 sum (64 hex digits) for "iofog-transport-x" (` + file + `)`},
		{"plugins.checksums path", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_PLUGINS_CHECKSUMS": "../x=" + strings.Repeat("ab", 32)}, nil,
			`plugins.checksums: "../x" is not a plugin file name (environment IOFOG_CONNECTOR_PLUGINS_CHECKSUMS)`},
		{"api-token-file type", minimal + `,"api-token-file":false}`, nil, nil, `api-token-file: false is not a string (` + file + `)`},
		{"api-client-ca type", minimal + `,"api-client-ca":[]}`, nil, nil, `api-client-ca: [] is not a string (` + file + `)`},
		{"metrics-address type", minimal + `,"metrics-address":9100}`, nil, nil, `metrics-address: 9100 is not HOST:PORT (or "off") (` + file + `)`},
		{"plugins.checksums list", minimal + `,"plugins":{"checksums":["a"]}}`, nil, nil, `plugins.checksums: [a] is not ` + checksumsWant + ` (` + file + `)`},
		{"public-wait-timeout", minimal + `,"public-wait-timeout":"soon"}`, nil, nil,
			`public-wait-timeout: "soon" is not a duration such as "5s" or a number of milliseconds (` + file + `)`},
		{"public-wait-timeout negative", minimal + `,"public-wait-timeout":-5}`, nil, nil,
			`public-wait-timeout: -5 is not a duration such as "5s" or a number of milliseconds (` + file + `)`},
		{"public-max-waiting", minimal + `,"public-max-waiting":-1}`, nil, nil, `public-max-waiting: -1 is not a number from 0 to 1048576 (` + file + `)`},
		{"public-max-waiting-per-source", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_PUBLIC_MAX_WAITING_PER_SOURCE": "2000000"}, nil,
			`public-max-waiting-per-source: 2000000 is not a number from 0 to 1048576 (environment IOFOG_CONNECTOR_PUBLIC_MAX_WAITING_PER_SOURCE)`},
		{"log-level", minimal + `,"log-level":"loud"}`, nil, nil, `log-level: "loud" is not debug, info, warn or error (` + file + `)`},
		{"log-file", minimal + `,"log-file":true}`, nil, nil, `log-file: true is not a string (` + file + `)`},
		{"tls-cert", minimal + `,"tls-cert":1}`, nil, nil, `tls-cert: 1 is not a string (` + file + `)`},
		{"tls-key", minimal + `,"tls-key":1}`, nil, nil, `tls-key: 1 is not a string (` + file + `)`},
		{"api-token type", minimal + `,"api-token":1234567890123456789}`, nil, nil, `api-token: 1.2345678901234568e+18 is not a string (` + file + `)`},
		{"api-token short", minimal + `,"api-token":"short"}`, nil, nil, `api-token: the token has 5 characters; it needs 16 to 4096 (` + file + `)`},
		{"api-token space", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_API_TOKEN": "0123456789 abcdef"}, nil,
			`api-token: the token has a character that is not printable ASCII or is a space (at byte 10) (environment IOFOG_CONNECTOR_API_TOKEN)`},
		{"api-token empty", minimal + `,"api-token":""}`, nil, nil, `api-token: is empty; remove the setting to leave it off (` + file + `)`},
		{"api-token-file empty flag", minimal + `}`, nil, []string{"--api-token-file", ""}, `api-token-file: is empty; remove the setting to leave it off (flag --api-token-file)`},
		{"both tokens", minimal + `,"api-token":"0123456789abcdef"}`, nil, []string{"--api-token-file", "/t"},
			`api-token and api-token-file: both are set (` + file + `; flag --api-token-file); give one`},
		{"api-client-ca in dev", minimal + `,"dev":true}`, map[string]string{"IOFOG_CONNECTOR_API_CLIENT_CA": "/ca.pem"}, nil,
			`api-client-ca: client certificates need the HTTPS API, but dev is true (plain HTTP); unset one of them (environment IOFOG_CONNECTOR_API_CLIENT_CA; dev: ` + file + `)`},
		{"metrics-address", minimal + `,"metrics-address":"9100"}`, nil, nil, `metrics-address: "9100" is not HOST:PORT (or "off") (` + file + `)`},
		{"metrics-address flag", minimal + `}`, nil, []string{"--metrics-address", "127.0.0.1:"}, `metrics-address: "127.0.0.1:" is not HOST:PORT (or "off") (flag --metrics-address)`},
		{"transports not an object", minimal + `,"transports":[1]}`, nil, nil, `transports: [1] is not an object of transport names to their settings (` + file + `)`},
		{"transports bad name", minimal + `,"transports":{"Bad Name":{}}}`, nil, nil, `transports: "bad name" is not a transport name (in transports.<name>) (` + file + `)`},
		{"transport subtree not an object", minimal + `,"transports":{"fast":3}}`, nil, nil, `transports.fast: 3 is not an object of settings (` + file + `)`},
		{"transport unknown key", minimal + `,"transports":{"fast":{"speed":3}}}`, nil, nil,
			`transports.fast.speed: unknown key (` + file + `); fast has timeout, window, backlog, hosts, pin, enabled, limit`},
		{"transport duration", minimal + `,"transports":{"fast":{"timeout":"later"}}}`, nil, nil,
			`transports.fast.timeout: "later" is not a duration such as "5s" or a number of milliseconds (` + file + `)`},
		{"transport uint32", minimal + `,"transports":{"fast":{"window":-1}}}`, nil, nil, `transports.fast.window: -1 is not a whole number, 0 or more (` + file + `)`},
		{"transport uint32 overflow", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_TRANSPORTS_FAST_WINDOW": "4294967296"}, nil,
			`transports.fast.window: "4294967296" is not a whole number, 0 or more (environment IOFOG_CONNECTOR_TRANSPORTS_FAST_WINDOW)`},
		{"transport int", minimal + `,"transports":{"fast":{"backlog":"x"}}}`, nil, nil, `transports.fast.backlog: "x" is not a whole number (` + file + `)`},
		{"transport list", minimal + `,"transports":{"fast":{"hosts":[1]}}}`, nil, nil, `transports.fast.hosts[0]: 1 is not a string (` + file + `)`},
		{"transport string", minimal + `,"transports":{"fast":{"pin":1}}}`, nil, nil, `transports.fast.pin: 1 is not a string (` + file + `)`},
		{"transport bool", minimal + `,"transports":{"fast":{"enabled":"sure"}}}`, nil, nil, `transports.fast.enabled: "sure" is not true or false (` + file + `)`},
		{"transport validate", minimal + `,"transports":{"fast":{"limit":5}}}`, nil, nil,
			`transports.fast.limit: fast: Limit 5 is over 3 (` + file + `)`},
		{"transport validate env", minimal + `}`, map[string]string{"IOFOG_CONNECTOR_TRANSPORTS_FAST_LIMIT": "4"}, nil,
			`transports.fast.limit: fast: Limit 4 is over 3 (environment IOFOG_CONNECTOR_TRANSPORTS_FAST_LIMIT)`},
		{"missing file", "", nil, []string{"--config", "/nonexistent/c.conf"}, "settings file: open /nonexistent/c.conf: no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, p, err := loadFile(t, tt.body, tt.args...)
			if err == nil {
				t.Fatalf("loaded %+v; want the error %q", s, tt.want)
			}
			want := strings.ReplaceAll(tt.want, "FILE", p)
			if tt.name == "not json" {
				if !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("error\n %s\nwant it to start with\n %s", err, want)
				}
				return
			}
			if err.Error() != want {
				t.Fatalf("error\n %s\nwant\n %s", err, want)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
}

// TestSettingsDevDefaults: with no settings file the daemon runs in dev
// mode on 127.0.0.1:8080, ports 7000-7999, metrics on loopback (clear of
// both) and a data dir under HOME; "off" turns the metrics off.
func TestSettingsDevDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dev := func(args ...string) *Settings {
		t.Helper()
		fs := daemonFlags()
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		s, err := Load(Source{Flags: fs, DefaultFile: filepath.Join(t.TempDir(), "missing.conf"), Transports: testProtos()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := dev()
	if !s.DevDefaults || !s.Dev || s.File != "" || s.APIAddress != DevAPIAddress || len(s.Pool) != 1000 || s.Pool[0] != 7000 ||
		s.DataDir != filepath.Join(home, ".local", "state", "iofog-connector") || s.Transport != "tcp" || s.LogLevel != slog.LevelInfo {
		t.Fatalf("dev defaults: %+v", s)
	}
	if s.MetricsAddress != DevMetricsAddress || !strings.HasPrefix(DevMetricsAddress, "127.0.0.1:") || DevMetricsAddress == DevAPIAddress {
		t.Fatalf("dev-default metrics %q", s.MetricsAddress)
	}
	if s := dev("--metrics-address", "off"); s.MetricsAddress != "" {
		t.Fatalf("metrics-address off on dev defaults: %q", s.MetricsAddress)
	}
	t.Setenv("IOFOG_CONNECTOR_METRICS_ADDRESS", "OFF")
	if s := dev(); s.MetricsAddress != "" {
		t.Fatalf("IOFOG_CONNECTOR_METRICS_ADDRESS=OFF on dev defaults: %q", s.MetricsAddress)
	}
	t.Setenv("IOFOG_CONNECTOR_DEV", "false")
	if s := dev(); s.Dev || !s.DevDefaults || s.APIAddress != DevAPIAddress {
		t.Fatalf("dev=false on dev defaults: %+v", s)
	}
	// The environment names the settings file.
	p := filepath.Join(t.TempDir(), "c.conf")
	if err := os.WriteFile(p, []byte(`{"ports":["9000-9001"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IOFOG_CONNECTOR_CONFIG", p)
	if s := dev(); s.DevDefaults || s.File != p || len(s.Pool) != 2 {
		t.Fatalf("IOFOG_CONNECTOR_CONFIG: %+v", s)
	}
}

// TestSettingsMetricsDefaultWithFile: with a settings file the metrics
// are off unless named; an explicitly empty flag turns them off on dev
// defaults too.
func TestSettingsMetricsDefaultWithFile(t *testing.T) {
	s, _, err := loadFile(t, minimal+`,"dev":true}`)
	if err != nil || s.MetricsAddress != "" {
		t.Fatalf("metrics with a settings file: %q %v", s.MetricsAddress, err)
	}
	fs := daemonFlags()
	if err := fs.Parse([]string{"--metrics-address", ""}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", t.TempDir())
	s, err = Load(Source{Flags: fs, DefaultFile: filepath.Join(t.TempDir(), "missing.conf")})
	if err != nil || s.MetricsAddress != "" {
		t.Fatalf("--metrics-address '' on dev defaults: %q %v", s.MetricsAddress, err)
	}
}

// TestSettingsAPIAddressDefaults: the API's default follows dev.
func TestSettingsAPIAddressDefaults(t *testing.T) {
	for body, want := range map[string]string{minimal + `,"dev":true}`: ":8080", minimal + `,"dev":false}`: ":443", minimal + `,"dev":"true","api":":1"}`: ":1",
		minimal + `,"api":":1","api-address":":2"}`: ":2"} {
		s, _, err := loadFile(t, body)
		if err != nil || s.APIAddress != want {
			t.Errorf("%s: api-address %q %v, want %q", body, s.APIAddress, err, want)
		}
	}
}

// TestSettingsShippedFiles: the settings files the packages install load.
func TestSettingsShippedFiles(t *testing.T) {
	for _, p := range []string{"../../deploy/debian/iofog-connector.conf", "../../deploy/container/iofog-connector.conf"} {
		fs := daemonFlags()
		if err := fs.Parse([]string{"--config", p, "--data-dir", t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		s, err := Load(Source{Flags: fs})
		if err != nil || s.Dev || len(s.Pool) < 2 || s.Broker != 12345 || s.Address != "127.0.0.1" {
			t.Errorf("%s: %+v %v", p, s, err)
		}
	}
}
