package core

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Mapping types.
const (
	// TypePublic exposes an agent's local service on a public port.
	TypePublic = "public"
	// TypePrivate joins two agents.
	TypePrivate = "private"
)

// Limits of a mapping's settings.
const (
	// MinHeartbeatThreshold is the smallest heartbeat absence threshold a
	// new mapping may have. Below a second links drop between any agent's
	// beats (the threshold only ever makes links fail). It is a floor, not
	// a recommendation: legacy ioFog agents beat every 20 s
	// (LegacyAgentBeat), so a mapping that legacy agents link to needs a
	// threshold of at least 20,000 ms, and better a few beats more; the
	// Controller sends 200,000. Mappings stored with a smaller value are
	// reopened with this one.
	MinHeartbeatThreshold = time.Second
	// LegacyAgentBeat is how often legacy ioFog agents send BEAT on their
	// links (their fixed heartbeatfrequency of 20,000 ms).
	LegacyAgentBeat = 20 * time.Second
	// MinIdleTimeout and MaxIdleTimeout bound a mapping's IdleTimeout when
	// it is not zero (off).
	MinIdleTimeout = time.Second
	MaxIdleTimeout = 7 * 24 * time.Hour
	// MaxIDLength is the longest mapping id, in bytes.
	MaxIDLength = 128
)

// CheckID returns an error wrapping [ErrInvalid] unless id can be a
// client-chosen mapping id: 1 to [MaxIDLength] bytes of valid UTF-8, made
// of printable characters other than spaces (no control, format such as
// zero-width or bidi override, private-use or unassigned characters, which
// could make two ids look alike in a listing), and not "all", which
// status reserves for the whole daemon.
func CheckID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: id is empty", ErrInvalid)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: id is longer than %d bytes", ErrInvalid, MaxIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: id is not valid UTF-8", ErrInvalid)
	case strings.EqualFold(id, "all"):
		return fmt.Errorf("%w: id %q is reserved (status all reports the whole connector)", ErrInvalid, id)
	}
	for i, r := range id {
		if r == ' ' || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: id has a space, control, format or unassigned character (%U at byte %d); ids must be printable characters without spaces", ErrInvalid, r, i)
		}
	}
	return nil
}

// AddRequest describes a mapping to create.
type AddRequest struct {
	// ID is the mapping id. Empty means a new random UUID.
	ID string
	// Type is TypePublic or TypePrivate. Required.
	Type string
	// MaxConnections1 is the Controller's maxconnections (public) or
	// maxconnectionsport1 (private): the most relayed connections at once
	// on port1's side, on every transport alike. For a public mapping,
	// the most public clients relayed at once (a client beyond it waits
	// for one to end, within the public wait timeout); for a private one,
	// the most streams held at once on port1 (a stream beyond it is
	// closed). Must be positive. It also caps the agent links of port1
	// (sdk.EndpointConfig.MaxLinks), a safety cap of the transport.
	MaxConnections1 int
	// MaxConnections2 is maxconnectionsport2: the same for port2 of a
	// private mapping. Must be positive for a private mapping, ignored
	// for a public one.
	MaxConnections2 int
	// Heartbeat1 and Heartbeat2 are the heartbeat absence thresholds of
	// port1 and port2. Zero means the transport's default; otherwise at
	// least MinHeartbeatThreshold.
	Heartbeat1, Heartbeat2 time.Duration
	// Transport names the transport of the agent ports. Empty means the
	// manager's default.
	Transport string
	// IdleTimeout closes a relayed connection (public client or private
	// pair) on which no byte moved either way for that long. Zero means
	// never; otherwise from MinIdleTimeout to MaxIdleTimeout.
	IdleTimeout time.Duration
	// ProxyProtocol is "v1" or "v2" to make our agents write a PROXY
	// protocol header with the public client's address to their local
	// service, or "" (off). Public mappings only: see [ProxyProtocols].
	ProxyProtocol string
}

// ProxyProtocols lists the values of AddRequest.ProxyProtocol other than
// "" (off). The header is written by our agents on transports that carry
// the client's address to them (tcp, yamux, quic and plugins built with
// this release's sdk/plugin); legacy ioFog agents and older agents get no
// header, and the connector logs that once per mapping.
var ProxyProtocols = []string{"v1", "v2"}

// Mapping is a created mapping as the API reports it.
type Mapping struct {
	ID        string
	Type      string
	Port1     int
	Port2     int
	Passcode1 string
	Passcode2 string // empty for a public mapping
	Transport string
	// MaxConnections1 and MaxConnections2 are the mapping's limits (see
	// AddRequest.MaxConnections1); MaxConnections2 is zero for a public
	// mapping.
	MaxConnections1 int
	MaxConnections2 int
	Heartbeat1      time.Duration
	Heartbeat2      time.Duration
	// IdleTimeout is the relay idle timeout; zero means none.
	IdleTimeout time.Duration
	// ProxyProtocol is the PROXY protocol version agents write ("v1",
	// "v2"), or "" for none.
	ProxyProtocol string
}

// SideStatus is the live state of one port of a mapping.
type SideStatus struct {
	// Port is the port number.
	Port int
	// Active is true when at least one agent link is open (agent ports)
	// or a public client is being relayed (public port).
	Active bool
	// Links and IdleLinks come from the transport, when it reports them.
	// Streams is the core's own count of the streams it holds on this
	// agent port (exact, see relay.Limit); zero on the public port.
	Links, IdleLinks, Streams int
	// Failed counts agent connections that did not become links (failed
	// or refused handshakes), when the transport counts them.
	Failed int64
	// FailedByReason splits Failed by sdk.Failure* reason, when the
	// transport splits it (see sdk.EndpointStats.FailedByReason); nil
	// otherwise. Read only.
	FailedByReason map[string]int64
	// Error says why the port stopped accepting and is being listened
	// again; empty while it serves.
	Error string
	// Restarts counts how many times the port was listened again after it
	// stopped on its own.
	Restarts int
}

// MappingStatus is a snapshot of one mapping.
type MappingStatus struct {
	Mapping
	// Side1 is port1 (the agent port). Side2 is the public port of a
	// public mapping or the second agent port of a private one.
	Side1, Side2 SideStatus
	// Active, Total, Refused, BytesUp and BytesDown are the relay's
	// counters.
	Active, Total, Refused, BytesUp, BytesDown int64
	// RefusedNoAgent, RefusedTooMany, RefusedTLS and RefusedAtLimit
	// split Refused by reason (see relay.Counters); Waiting is the number
	// of public clients waiting for an agent link or for a place under
	// maxconnections now.
	RefusedNoAgent, RefusedTooMany, RefusedTLS, RefusedAtLimit, Waiting int64

	down string
}

// Summary is the state of the whole daemon.
type Summary struct {
	Mappings       int
	PublicMappings int
	FreePorts      int
	AgentLinks     int
	// PublicConns is the number of public clients being relayed.
	PublicConns int64
	Started     time.Time
}
