package sdk

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Mode says how the core uses an endpoint.
type Mode string

const (
	// ModePublic is the agent port of a public pipe: the core only calls
	// [Endpoint.Open], once per public client.
	ModePublic Mode = "public"
	// ModePrivate is one side of a private pipe: the core calls both
	// [Endpoint.Accept] and [Endpoint.Open] and pairs streams across sides.
	ModePrivate Mode = "private"
)

// EndpointConfig is what the core gives a transport for one agent port.
type EndpointConfig struct {
	// MappingID identifies the mapping, for logs. Optional.
	MappingID string
	// Side is 1 for port1 and 2 for port2. Informational.
	Side int
	// Mode says how the core will use the endpoint. Zero means ModePublic.
	Mode Mode
	// Addr is the host:port to listen on. Required.
	Addr string
	// Passcode is the secret an agent must present. Required; compare it
	// in constant time.
	Passcode string
	// MaxLinks caps the authenticated agent links (connections or
	// sessions) open at once; agents beyond it are refused with
	// [ErrLinkLimit]. Zero means no cap. It is a safety cap of the
	// transport, not the mapping's limit: the core sets it to the side's
	// maxconnections, because no agent needs more links than the streams
	// it may carry at once.
	//
	// The mapping's limit is the Controller's maxconnections
	// (maxconnectionsport1 and maxconnectionsport2 of a private mapping),
	// with its legacy meaning on every transport alike: the most relayed
	// connections at once per side. For a public mapping, the most public
	// clients relayed at once through port1's agents; for a private one,
	// the most streams held at once on each side. The core enforces it,
	// counting the streams it holds (see [Endpoint.Open] and
	// [Endpoint.Accept]): a public client beyond it waits, as when no link
	// is free, and a private stream beyond it is closed. A transport need
	// not count streams for it; how many streams share a link is its own
	// business.
	MaxLinks int
	// HeartbeatThreshold is how long a link may stay silent before the
	// transport closes it. Zero means the transport's default.
	HeartbeatThreshold time.Duration
	// TLS, when not nil, is the server identity for the agent port. Nil
	// means plain connections (the connector's dev mode); a transport
	// that cannot run without TLS (quic) makes its own identity then.
	TLS *tls.Config
	// Logger receives the endpoint's logs. Nil means discard. The caller
	// (core) hands over a logger that already carries [AttrMappingID],
	// [AttrSide] and [AttrTransport]; a transport must not add them again
	// (each would appear twice on every line). It adds only what it learns
	// itself, such as [AttrPeer] for an accepted agent.
	Logger *slog.Logger
}

// Validate reports whether the config can be served, wrapping
// [ErrInvalidConfig] and naming the field that is wrong.
func (c *EndpointConfig) Validate() error {
	switch {
	case c.Addr == "":
		return fmt.Errorf("%w: Addr is empty", ErrInvalidConfig)
	case c.Passcode == "":
		return fmt.Errorf("%w: Passcode is empty", ErrInvalidConfig)
	case c.MaxLinks < 0:
		return fmt.Errorf("%w: MaxLinks %d is negative", ErrInvalidConfig, c.MaxLinks)
	case c.HeartbeatThreshold < 0:
		return fmt.Errorf("%w: HeartbeatThreshold %v is negative", ErrInvalidConfig, c.HeartbeatThreshold)
	case c.Mode != "" && c.Mode != ModePublic && c.Mode != ModePrivate:
		return fmt.Errorf("%w: Mode %q is neither public nor private", ErrInvalidConfig, c.Mode)
	}
	return nil
}

// DialConfig is what an agent gives a transport to reach one endpoint.
type DialConfig struct {
	// Addr is the connector's agent port, host:port. Required.
	Addr string
	// Passcode is the endpoint's passcode. Required.
	Passcode string
	// TLS, when not nil, is the client TLS configuration (a pool holding
	// the connector's certificate or CA). Nil means plain connections.
	TLS *tls.Config
	// HeartbeatInterval is how often idle links prove they are alive.
	// Zero means the transport's default.
	HeartbeatInterval time.Duration
	// HeartbeatThreshold is how long the agent waits without hearing from
	// the connector before it drops a link. Zero means the default.
	HeartbeatThreshold time.Duration
	// Logger receives the session's logs. Nil means discard. The caller
	// (sdk/agent) hands over a logger that already carries [AttrTransport]
	// and [AttrPeer] (the connector's address); a transport must not add
	// them again.
	Logger *slog.Logger
}

// Validate reports whether the config can be dialled, wrapping
// [ErrInvalidConfig] and naming the field that is wrong.
func (c *DialConfig) Validate() error {
	switch {
	case c.Addr == "":
		return fmt.Errorf("%w: Addr is empty", ErrInvalidConfig)
	case c.Passcode == "":
		return fmt.Errorf("%w: Passcode is empty", ErrInvalidConfig)
	case c.HeartbeatInterval < 0:
		return fmt.Errorf("%w: HeartbeatInterval %v is negative", ErrInvalidConfig, c.HeartbeatInterval)
	case c.HeartbeatThreshold < 0:
		return fmt.Errorf("%w: HeartbeatThreshold %v is negative", ErrInvalidConfig, c.HeartbeatThreshold)
	}
	return nil
}

// Default timings shared by transports that have no reason to differ.
const (
	// DefaultHeartbeatInterval is how often idle links beat when
	// DialConfig.HeartbeatInterval is zero.
	DefaultHeartbeatInterval = 5 * time.Second
	// DefaultHeartbeatThreshold is the silence after which a link is
	// dropped when a config's HeartbeatThreshold is zero.
	DefaultHeartbeatThreshold = 60 * time.Second
)

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidName reports whether name can be a transport name: 1 to 32
// characters of lowercase letters, digits and dashes, starting with a
// letter.
func ValidName(name string) bool { return validName.MatchString(name) }

// Logger returns l, or a logger that discards everything when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
