package core

import "time"

// Mapping types.
const (
	// TypePublic exposes an agent's local service on a public port.
	TypePublic = "public"
	// TypePrivate joins two agents.
	TypePrivate = "private"
)

// AddRequest describes a mapping to create.
type AddRequest struct {
	// ID is the mapping id. Empty means a new random UUID.
	ID string
	// Type is TypePublic or TypePrivate. Required.
	Type string
	// MaxConnections1 caps agent links on port1; must be positive.
	MaxConnections1 int
	// MaxConnections2 caps agent links on port2 of a private mapping; must
	// be positive for a private mapping, ignored for a public one.
	MaxConnections2 int
	// Heartbeat1 and Heartbeat2 are the heartbeat absence thresholds of
	// port1 and port2. Zero means the transport's default.
	Heartbeat1, Heartbeat2 time.Duration
	// Transport names the transport of the agent ports. Empty means the
	// manager's default.
	Transport string
}

// Mapping is a created mapping as the API reports it.
type Mapping struct {
	ID         string
	Type       string
	Port1      int
	Port2      int
	Passcode1  string
	Passcode2  string // empty for a public mapping
	Transport  string
	MaxConns1  int
	MaxConns2  int
	Heartbeat1 time.Duration
	Heartbeat2 time.Duration
}

// SideStatus is the live state of one port of a mapping.
type SideStatus struct {
	// Port is the port number.
	Port int
	// Active is true when at least one agent link is open (agent ports)
	// or a public client is being relayed (public port).
	Active bool
	// Links, IdleLinks and Streams come from the transport, when it
	// reports them.
	Links, IdleLinks, Streams int
	// Failed counts agent connections that did not become links (failed
	// or refused handshakes), when the transport counts them.
	Failed int64
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
