package main

import (
	"strings"
	"testing"
)

// TestMetricsAddressSetting: metrics are off with a settings file that
// does not name them, on loopback on dev defaults, and set by the file,
// the flag or the environment; "off" turns them off; a value that is not
// HOST:PORT is refused.
func TestMetricsAddressSetting(t *testing.T) {
	base := `{"ports":["7000-7010"],"dev":true`
	for _, tt := range []struct {
		name, body string
		flags      []string
		env        string
		want       string
		err        string
	}{
		{name: "file without it", body: base + `}`, want: ""},
		{name: "file", body: base + `,"metrics-address":"127.0.0.1:9100"}`, want: "127.0.0.1:9100"},
		{name: "all interfaces", body: base + `,"metrics-address":":9100"}`, want: ":9100"},
		{name: "flag over file", body: base + `,"metrics-address":"127.0.0.1:9100"}`, flags: []string{"--metrics-address", "[::1]:9200"}, want: "[::1]:9200"},
		{name: "env", body: base + `}`, env: "127.0.0.1:9300", want: "127.0.0.1:9300"},
		{name: "off", body: base + `,"metrics-address":"off"}`, want: ""},
		{name: "not host:port", body: base + `,"metrics-address":"9100"}`, err: `metrics-address: "9100" is not HOST:PORT`},
		{name: "no port", body: base + `,"metrics-address":"127.0.0.1:"}`, err: "metrics-address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("IOFOG_CONNECTOR_METRICS_ADDRESS", tt.env)
			}
			s, err := settingsFrom(t, tt.body, tt.flags...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to say %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.MetricsAddress != tt.want {
				t.Fatalf("MetricsAddress = %q, want %q", s.MetricsAddress, tt.want)
			}
		})
	}
}
