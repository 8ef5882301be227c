package tcp

import (
	"fmt"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Config tunes the transport. The zero value is valid: every zero field
// means its default.
type Config struct {
	// HandshakeTimeout bounds the TLS handshake and the passcode exchange
	// of a new agent connection, on both halves. Zero means 10 seconds.
	HandshakeTimeout time.Duration
	// BindTimeout is how long the connector waits for an agent to
	// acknowledge a bind frame (protocol versions 1 to 3), or to echo the
	// beat due when a bind comes and to take the bind frame (version 4),
	// before it drops the link and tries another idle one. Zero means 5
	// seconds.
	BindTimeout time.Duration
	// SweepInterval is ignored.
	//
	// Deprecated: the connector no longer polls the streams it handed
	// out; the core tells it when it closed one ([sdk.StreamObserver]).
	// The field is kept, and still refused when negative, so that
	// settings files that set transports.tcp.sweep-interval keep loading.
	SweepInterval time.Duration
	// DialTimeout bounds an agent's TCP connect to the connector. Zero
	// means 10 seconds.
	DialTimeout time.Duration

	// maxVersion is the newest protocol version this side speaks; zero
	// means protocolNewest. Tests lower it to play an older release.
	maxVersion byte
}

// DefaultConfig returns the defaults, filled in.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

func (c *Config) defaults() {
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.BindTimeout == 0 {
		c.BindTimeout = 5 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.maxVersion == 0 {
		c.maxVersion = protocolNewest
	}
}

// Validate reports whether c can be used, wrapping [sdk.ErrInvalidConfig]
// and naming the wrong field.
func (c *Config) Validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"HandshakeTimeout", c.HandshakeTimeout},
		{"BindTimeout", c.BindTimeout},
		{"SweepInterval", c.SweepInterval},
		{"DialTimeout", c.DialTimeout},
	} {
		if f.d < 0 {
			return fmt.Errorf("tcp: %w: %s %v is negative", sdk.ErrInvalidConfig, f.name, f.d)
		}
	}
	return nil
}
