package settings

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// fastConfig stands for a transport's Config: one field of each kind the
// built-in transports have.
type fastConfig struct {
	Timeout time.Duration
	Window  uint32
	Backlog int
	Hosts   []string
	Pin     string
	Enabled bool
	Limit   int64
	private int
}

func (c *fastConfig) Validate() error {
	if c.Limit > 3 {
		return fmt.Errorf("fast: Limit %d is over 3", c.Limit)
	}
	return nil
}

// slowConfig has the field names of transports/quic's Config that need
// care: an acronym with digits and a long name.
type slowConfig struct {
	PinSHA256                  string
	MaxConnectionReceiveWindow uint64
}

func testProtos() map[string]any { return map[string]any{"fast": fastConfig{}, "slow": slowConfig{}} }

// TestSettingsTransports: transports.<name> decodes into each transport's
// Config from the file (any spelling of a key) and the environment (which
// wins), absent subtrees give the zero Config, and subtrees naming no
// built-in transport are kept for plugins.
func TestSettingsTransports(t *testing.T) {
	pin := strings.Repeat("0a", 32)
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_FAST_BACKLOG", "64")
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_SLOW_PIN_SHA256", pin)
	s, _, err := loadFile(t, minimal+`,"transports":{
		"fast":{"timeout":"2s","window":1048576,"Backlog":7,"hosts":["a.example","10.0.0.1"],"pin":"p","enabled":"true","limit":3},
		"ws":{"path":"/x"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := fastConfig{Timeout: 2 * time.Second, Window: 1 << 20, Backlog: 64, Hosts: []string{"a.example", "10.0.0.1"}, Pin: "p", Enabled: true, Limit: 3}
	if got := s.Transports.Configs["fast"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("fast = %+v, want %+v", got, want)
	}
	if got := s.Transports.Configs["slow"]; !reflect.DeepEqual(got, slowConfig{PinSHA256: pin}) {
		t.Fatalf("slow = %+v (env only)", got)
	}
	if got := s.Transports.Plugins; !reflect.DeepEqual(got, map[string]map[string]any{"ws": {"path": "/x"}}) {
		t.Fatalf("plugin subtrees = %v", got)
	}
	// The spellings of the Go name work in the file; the env beats them.
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_FAST_BACKLOG", "")
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_FAST_HOSTS", "b.example, c.example")
	s, _, err = loadFile(t, minimal+`,"transports":{"slow":{"PinSHA256":"`+strings.ToUpper(pin)+`","max_connection_receive_window":5e6}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Transports.Configs["slow"]; !reflect.DeepEqual(got, slowConfig{PinSHA256: pin, MaxConnectionReceiveWindow: 5e6}) {
		t.Fatalf("slow = %+v", got)
	}
	if got := s.Transports.Configs["fast"].(fastConfig); !reflect.DeepEqual(got.Hosts, []string{"b.example", "c.example"}) || got.Backlog != 0 {
		t.Fatalf("fast from env = %+v", got)
	}
}

// TestLoadTransports: the agent's and the plugins command's reading:
// --plugin-dir over the environment over the file; no file unless named
// (or the default exists); other keys of the file are not read.
func TestLoadTransports(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.conf")
	sum := strings.Repeat("ff", 32)
	body := `{"ports":"not even valid","plugins":{"dir":"/file","checksums":{"IOFOG-transport-WS":"` + sum + `"}},"transports":{"fast":{"pin":"f"}}}`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(def string, args ...string) (*Transports, error) {
		fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
		fs.String("plugin-dir", "", "")
		fs.String("config", "", "")
		fs.String("log-level", "info", "") // not a key LoadTransports reads
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return LoadTransports(Source{Flags: fs, DefaultFile: def, Transports: testProtos()})
	}
	tr, err := load("")
	if err != nil || tr.PluginDir != "" || tr.Configs["fast"].(fastConfig).Pin != "" {
		t.Fatalf("no file: %+v %v", tr, err)
	}
	tr, err = load("", "--config", p)
	if err != nil || tr.PluginDir != "/file" || tr.Configs["fast"].(fastConfig).Pin != "f" || len(tr.PluginChecksums["iofog-transport-ws"]) != 32 {
		t.Fatalf("--config: %+v %v", tr, err)
	}
	tr, err = load(p)
	if err != nil || tr.PluginDir != "/file" {
		t.Fatalf("default file: %+v %v", tr, err)
	}
	t.Setenv("IOFOG_CONNECTOR_PLUGINS_DIR", "/env")
	if tr, err = load(p); err != nil || tr.PluginDir != "/env" {
		t.Fatalf("env over file: %+v %v", tr, err)
	}
	if tr, err = load(p, "--plugin-dir", "/flag"); err != nil || tr.PluginDir != "/flag" {
		t.Fatalf("flag over env: %+v %v", tr, err)
	}
	if _, err = load("", "--config", filepath.Join(dir, "missing.conf")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a named missing file: %v", err)
	}
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_FAST_LIMIT", "9")
	if _, err = load(""); err == nil || !strings.Contains(err.Error(), "transports.fast.limit: fast: Limit 9 is over 3 (environment IOFOG_CONNECTOR_TRANSPORTS_FAST_LIMIT)") {
		t.Fatalf("a bad transport setting: %v", err)
	}
}

// TestParseLevel is the agent's --log-level.
func TestParseLevel(t *testing.T) {
	if l, err := ParseLevel("DEBUG"); err != nil || l.String() != "DEBUG" {
		t.Fatal(l, err)
	}
	if l, err := ParseLevel(""); err != nil || l.String() != "INFO" {
		t.Fatal(l, err)
	}
	if _, err := ParseLevel("loud"); err == nil || err.Error() != `"loud" is not debug, info, warn or error` {
		t.Fatal(err)
	}
}

// TestSettingsPlugins: a plugin's settings are its transports.<name>
// subtree, overridden key by key by IOFOG_CONNECTOR_TRANSPORTS_<NAME>_<KEY>
// (matched to the file's key whatever its spelling); variables of the
// built-ins' keys stay theirs; settings that reach no plugin, or could
// reach two, are refused by name.
func TestSettingsPlugins(t *testing.T) {
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_WS_READ_LIMIT", "4096")
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_MY_WS_PATH", "/env")
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_FAST_BACKLOG", "8") // a built-in's key
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_FAST_NOTAKEY", "1") // a built-in's prefix: ignored, as before
	t.Setenv("IOFOG_CONNECTOR_TRANSPORTS_EMPTY_X", "")       // empty: unset
	s, _, err := loadFile(t, minimal+`,"transports":{"ws":{"path":"/file","readLimit":10,"deep":{"a":[1]}},"my-ws":{"x":true}}}`)
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Transports
	if got, want := tr.PluginEnv, map[string]string{"WS_READ_LIMIT": "4096", "MY_WS_PATH": "/env", "FAST_NOTAKEY": "1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("PluginEnv = %v, want %v", got, want)
	}
	if got, want := tr.PluginSettings("ws"), map[string]any{"path": "/file", "read-limit": "4096", "deep": map[string]any{"a": []any{float64(1)}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("PluginSettings(ws) = %v, want %v", got, want)
	}
	if got, want := tr.PluginSettings("my-ws"), map[string]any{"x": true, "path": "/env"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("PluginSettings(my-ws) = %v, want %v", got, want)
	}
	if got := tr.PluginSettings("other"); got != nil {
		t.Fatalf("PluginSettings(other) = %v, want nil", got)
	}
	builtin := []string{"fast", "slow"}
	have := []string{"fast", "slow", "ws", "my-ws"}
	if err := tr.CheckPlugins(have, builtin, []string{"ws", "my-ws"}); err != nil {
		t.Fatalf("CheckPlugins: %v", err)
	}
	if err := tr.CheckPlugins([]string{"fast", "slow", "ws"}, builtin, []string{"ws"}); err == nil ||
		!strings.Contains(err.Error(), `transports.my-ws: there is no transport "my-ws" (have: fast, slow, ws)`) {
		t.Fatalf("a subtree of no transport: %v", err)
	}
	tr.Plugins = nil
	if err := tr.CheckPlugins([]string{"fast", "slow", "ws"}, builtin, []string{"ws"}); err == nil ||
		!strings.Contains(err.Error(), "IOFOG_CONNECTOR_TRANSPORTS_MY_WS_PATH: there is no transport plugin of that name") {
		t.Fatalf("a variable of no transport: %v", err)
	}
	if err := tr.CheckPlugins([]string{"fast", "slow", "my", "my-ws", "ws"}, builtin, []string{"my", "my-ws", "ws"}); err == nil ||
		!strings.Contains(err.Error(), "IOFOG_CONNECTOR_TRANSPORTS_MY_WS_PATH: names a key of the plugins my and my-ws alike") {
		t.Fatalf("a variable two plugins could take: %v", err)
	}
}
