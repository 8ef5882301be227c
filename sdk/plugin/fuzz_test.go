package plugin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
)

// FuzzSettings: whatever a host sends as settings, ParseSettings and
// Decode return an error or a value, never panic, and a refusal wraps
// sdk.ErrInvalidConfig.
func FuzzSettings(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"path":"/x","read-limit":"4096"}`, `{"timeout":"5s","hosts":"a,b","n":-1}`,
		`{"hosts":["a",1]}`, `{"u":1e99}`, `[1]`, `{"a":{"b":[]}}`, `{"ratio":"NaN"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := plugin.ParseSettings("fuzz", b)
		if err != nil {
			if !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Fatalf("ParseSettings: %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		var cfg struct {
			Path    string
			N       int
			U       uint8
			Timeout time.Duration
			Verbose bool
			Ratio   float32
			Hosts   []string
			Nested  struct{ A int }
		}
		if err := s.Decode(&cfg); err != nil && !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Fatalf("Decode: %v does not wrap ErrInvalidConfig", err)
		}
	})
}
