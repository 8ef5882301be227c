package quic

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// ALPN is the TLS application protocol name both halves require.
const ALPN = "iofog-connector/1"

// Config tunes the transport. The zero value is valid: every zero field
// means its default.
type Config struct {
	// IdentityDir is where the connector half keeps its dev-mode TLS
	// identity (used when EndpointConfig.TLS is nil): quic-identity.crt
	// and quic-identity.key, generated on first use. Empty means an
	// identity generated in memory for the life of the Transport, which
	// agents can then only trust by pin or not at all.
	IdentityDir string
	// IdentityHosts are extra DNS names or IP addresses put in a newly
	// generated dev identity, besides localhost, 127.0.0.1, ::1 and the
	// machine's hostname. Empty means none.
	IdentityHosts []string
	// PinSHA256 is, for the agent half, the hex SHA-256 of the connector's
	// certificate (DER) to accept when DialConfig.TLS is nil. Empty means
	// that, with DialConfig.TLS nil, any certificate is accepted (dev mode,
	// as unauthenticated as plain TCP); pass DialConfig.TLS with the
	// identity's certificate as root (the agent's --ca) to verify it.
	PinSHA256 string
	// MaxStreams is how many concurrent streams each side lets the other
	// open on one connection. Zero means 100000.
	MaxStreams int64
	// MaxStreamReceiveWindow bounds one stream's receive window, hence its
	// throughput (about window/RTT). Zero means 16 MiB.
	MaxStreamReceiveWindow uint64
	// MaxConnectionReceiveWindow bounds a connection's receive window.
	// Zero means 64 MiB.
	MaxConnectionReceiveWindow uint64
	// HandshakeTimeout bounds the TLS and passcode handshakes. Zero means
	// 10 seconds.
	HandshakeTimeout time.Duration
	// DisableGRO turns off UDP generic receive offload (Linux 5.0+), with
	// which the kernel hands a run of datagrams from one sender over in
	// one read. False (the default) uses it where the kernel has it.
	DisableGRO bool
}

func (c *Config) defaults() {
	if c.MaxStreams == 0 {
		c.MaxStreams = 100000
	}
	if c.MaxStreamReceiveWindow == 0 {
		c.MaxStreamReceiveWindow = 16 << 20
	}
	if c.MaxConnectionReceiveWindow == 0 {
		c.MaxConnectionReceiveWindow = 64 << 20
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
}

// DefaultConfig returns the defaults, filled in.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

// Validate reports whether c can be used, wrapping [sdk.ErrInvalidConfig].
func (c *Config) Validate() error {
	switch {
	case c.MaxStreams < 0:
		return fmt.Errorf("quic: %w: MaxStreams %d is negative", sdk.ErrInvalidConfig, c.MaxStreams)
	case c.HandshakeTimeout < 0:
		return fmt.Errorf("quic: %w: HandshakeTimeout %v is negative", sdk.ErrInvalidConfig, c.HandshakeTimeout)
	case c.PinSHA256 != "":
		b, err := hex.DecodeString(strings.ReplaceAll(c.PinSHA256, ":", ""))
		if err != nil || len(b) != 32 {
			return fmt.Errorf("quic: %w: PinSHA256 is not 64 hex digits", sdk.ErrInvalidConfig)
		}
	}
	return nil
}

// timing derives QUIC's keepalive period and idle timeout from a heartbeat
// threshold: a connection silent for the threshold is closed, and each side
// sends a keepalive every quarter of it (or every interval when shorter).
func timing(threshold, interval time.Duration) (keepAlive, idle time.Duration) {
	if threshold <= 0 {
		threshold = sdk.DefaultHeartbeatThreshold
	}
	keepAlive = threshold / 4
	if interval > 0 && interval < keepAlive {
		keepAlive = interval
	}
	return keepAlive, threshold
}
