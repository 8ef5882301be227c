package plugin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/plugin"
)

type decodeTarget struct {
	Path      string
	ReadLimit int
	Timeout   time.Duration
	Verbose   bool
	Ratio     float64
	Hosts     []string
	Named     uint16 `json:"port"`
	Skipped   string `json:"-"`
}

func (d *decodeTarget) Validate() error {
	if d.ReadLimit < 0 {
		return errors.New("ReadLimit must not be negative")
	}
	return nil
}

func parse(t *testing.T, js string) plugin.Settings {
	t.Helper()
	s, err := plugin.ParseSettings("demo", []byte(js))
	if err != nil {
		t.Fatalf("ParseSettings(%s): %v", js, err)
	}
	return s
}

// TestSettingsDecode: keys match fields by kebab-case name or json tag,
// whatever their case, dashes or underscores; values come as JSON or as
// the strings environment variables give.
func TestSettingsDecode(t *testing.T) {
	d := decodeTarget{Path: "/default", ReadLimit: 7}
	s := parse(t, `{"path":"/x","READ_LIMIT":"2048","timeout":"5s","verbose":"true","ratio":0.5,"hosts":"a, b","port":8080}`)
	if err := s.Decode(&d); err != nil {
		t.Fatal(err)
	}
	want := decodeTarget{Path: "/x", ReadLimit: 2048, Timeout: 5 * time.Second, Verbose: true, Ratio: 0.5, Hosts: []string{"a", "b"}, Named: 8080}
	if d.Path != want.Path || d.ReadLimit != want.ReadLimit || d.Timeout != want.Timeout || !d.Verbose || d.Ratio != 0.5 ||
		strings.Join(d.Hosts, ",") != "a,b" || d.Named != 8080 {
		t.Fatalf("decoded %+v, want %+v", d, want)
	}
	// Durations as milliseconds, lists as JSON, unset fields kept.
	d = decodeTarget{Path: "/keep"}
	if err := parse(t, `{"timeout":250,"hosts":["x"],"readLimit":3}`).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Timeout != 250*time.Millisecond || d.Hosts[0] != "x" || d.ReadLimit != 3 || d.Path != "/keep" {
		t.Fatalf("decoded %+v", d)
	}
}

// TestSettingsDecodeErrors: every refusal names transports.<name>.<key>
// and wraps sdk.ErrInvalidConfig.
func TestSettingsDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ js, want string }{
		{`{"bogus":1}`, "transports.demo.bogus: unknown key; demo takes path, read-limit, timeout, verbose, ratio, hosts, port"},
		{`{"skipped":"x"}`, "transports.demo.skipped: unknown key"},
		{`{"read-limit":"many"}`, `transports.demo.read-limit: "many" is not a whole number`},
		{`{"port":70000}`, "transports.demo.port: 70000 is not a whole number, 0 or more, that fits"},
		{`{"timeout":"soon"}`, "transports.demo.timeout: \"soon\" is not a duration"},
		{`{"timeout":-5}`, "transports.demo.timeout: -5 is not a duration"},
		{`{"path":5}`, "transports.demo.path: 5 is not a string"},
		{`{"verbose":"perhaps"}`, "transports.demo.verbose: \"perhaps\" is not true or false"},
		{`{"hosts":{"a":1}}`, "transports.demo.hosts: {\"a\":1} is not a list of strings"},
		{`{"read-limit":-1}`, "transports.demo: ReadLimit must not be negative"},
	} {
		var d decodeTarget
		err := parse(t, tc.js).Decode(&d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v, want %q", tc.js, err, tc.want)
		}
		if err != nil && !strings.Contains(tc.want, "negative") && !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("Decode(%s) = %v, does not wrap sdk.ErrInvalidConfig", tc.js, err)
		}
	}
	var notStruct int
	if err := parse(t, `{}`).Decode(&notStruct); err == nil {
		t.Error("Decode(*int) succeeded")
	}
}

// TestParseSettingsBounds: settings are one JSON object of at most
// MaxSettingsSize bytes.
func TestParseSettingsBounds(t *testing.T) {
	if s, err := plugin.ParseSettings("demo", nil); err != nil || s.Len() != 0 {
		t.Fatalf("no settings: %v %v", s, err)
	}
	for _, bad := range []string{`[1]`, `"x"`, `null`, `{"a":`, `{} {}`} {
		if _, err := plugin.ParseSettings("demo", []byte(bad)); err == nil || !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("ParseSettings(%s) = %v, want an error wrapping ErrInvalidConfig", bad, err)
		}
	}
	big := `{"path":"` + strings.Repeat("x", plugin.MaxSettingsSize) + `"}`
	if _, err := plugin.ParseSettings("demo", []byte(big)); err == nil || !strings.Contains(err.Error(), "more than the 65536 allowed") {
		t.Errorf("ParseSettings(%d bytes) = %v, want the size refused", len(big), err)
	}
}

// configurable is the reference transport with settings.
type configurable struct {
	sdk.Transport
	got chan plugin.Settings
	cfg struct{ Label string }
}

func (c *configurable) Configure(_ context.Context, s plugin.Settings) error {
	if err := s.Decode(&c.cfg); err != nil {
		return err
	}
	c.got <- s
	return nil
}

// TestRemoteConfigure: the host's settings reach a Configurable transport
// over real gRPC; a refusal names the key; no settings send nothing; a
// transport that takes none is refused, naming the key; oversize
// settings never leave the host.
func TestRemoteConfigure(t *testing.T) {
	ctx := t.Context()
	c := &configurable{Transport: reftransport.New(), got: make(chan plugin.Settings, 2)}
	r := remote(t, c)
	if err := r.Configure(ctx, map[string]any{"label": "hello"}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	select {
	case s := <-c.got:
		if c.cfg.Label != "hello" || s.Len() != 1 {
			t.Fatalf("the plugin got %v, label %q", s.Keys(), c.cfg.Label)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Configure did not reach the transport")
	}
	if err := r.Configure(ctx, map[string]any{"label": "again"}); err == nil || !strings.Contains(err.Error(), "configured already") {
		t.Fatalf("a second Configure = %v, want refused", err)
	}

	bad := remote(t, &configurable{Transport: reftransport.New(), got: make(chan plugin.Settings, 1)})
	err := bad.Configure(ctx, map[string]any{"lable": "typo"})
	if err == nil || !strings.Contains(err.Error(), "transports.ref.lable: unknown key; ref takes label") || !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Fatalf("Configure(typo) = %v, want the key named", err)
	}

	plain := remote(t, reftransport.New())
	if err := plain.Configure(ctx, nil); err != nil {
		t.Fatalf("Configure(nil) on a transport without settings: %v", err)
	}
	err = plain.Configure(ctx, map[string]any{"zeta": 1, "alpha": 2})
	if err == nil || !strings.Contains(err.Error(), "transports.ref.alpha: the ref plugin takes no settings") {
		t.Fatalf("Configure on a transport without settings = %v, want refused naming alpha", err)
	}
	err = plain.Configure(ctx, map[string]any{"big": strings.Repeat("x", plugin.MaxSettingsSize)})
	if err == nil || !strings.Contains(err.Error(), "more than the 65536 allowed") {
		t.Fatalf("Configure(oversize) = %v, want refused", err)
	}
}
