package yamux

import (
	"fmt"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// Config tunes the transport. The zero value is valid: every zero field
// means its default.
type Config struct {
	// MaxStreamWindowSize is the largest receive window, in bytes, one
	// stream may grow to; it bounds one stream's throughput at about
	// window/RTT. Zero means [DefaultMaxStreamWindowSize].
	MaxStreamWindowSize uint32
	// AcceptBacklog is how many streams may wait, opened by the peer but
	// not yet accepted, per session. Zero means 4096.
	AcceptBacklog int
	// HandshakeTimeout bounds the passcode handshake (and the TLS
	// handshake before it) of a new agent connection on the connector
	// side. Zero means 10 seconds.
	HandshakeTimeout time.Duration
	// DrainTimeout is how long a fully closed stream keeps discarding what
	// the peer still sends (yamux has no stream reset), so the peer's
	// writes do not stall. Zero means 2 minutes.
	DrainTimeout time.Duration
}

// DefaultMaxStreamWindowSize is the default per-stream receive window: 4
// MiB, about 335 Mbit/s per stream at 100 ms RTT (1.3 Gbit/s at 25 ms),
// near what Linux autotunes a plain TCP connection's window to by default
// (tcp_rmem's 6 MiB ceiling). A stream whose reader lags buffers up to a
// window (and yamux's buffer grows to twice that), so the window is also
// what bulk transfers cost in memory; raise it for long fat links.
const DefaultMaxStreamWindowSize = 4 << 20

// DefaultConfig returns the defaults, filled in.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

func (c *Config) defaults() {
	if c.MaxStreamWindowSize == 0 {
		c.MaxStreamWindowSize = DefaultMaxStreamWindowSize
	}
	if c.AcceptBacklog == 0 {
		c.AcceptBacklog = 4096
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 2 * time.Minute
	}
}

// Validate reports whether c can be used, wrapping [sdk.ErrInvalidConfig].
func (c *Config) Validate() error {
	switch {
	case c.MaxStreamWindowSize != 0 && c.MaxStreamWindowSize < 256<<10:
		return fmt.Errorf("yamux: %w: MaxStreamWindowSize %d is below yamux's 256 KiB initial window", sdk.ErrInvalidConfig, c.MaxStreamWindowSize)
	case c.AcceptBacklog < 0:
		return fmt.Errorf("yamux: %w: AcceptBacklog %d is negative", sdk.ErrInvalidConfig, c.AcceptBacklog)
	case c.HandshakeTimeout < 0:
		return fmt.Errorf("yamux: %w: HandshakeTimeout %v is negative", sdk.ErrInvalidConfig, c.HandshakeTimeout)
	case c.DrainTimeout < 0:
		return fmt.Errorf("yamux: %w: DrainTimeout %v is negative", sdk.ErrInvalidConfig, c.DrainTimeout)
	}
	return nil
}

// keepalive derives yamux's ping interval and the time it waits for an
// answer (or for a frame write) from a heartbeat threshold, so that a dead
// peer is noticed within the threshold: at most interval + timeout =
// 3/4 of it. The interval is [muxkit.BeatInterval]'s: a positive interval,
// when shorter, is used as is.
func keepalive(threshold, interval time.Duration) (every, timeout time.Duration) {
	if threshold <= 0 {
		threshold = sdk.DefaultHeartbeatThreshold
	}
	return muxkit.BeatInterval(threshold, interval), threshold / 2
}
