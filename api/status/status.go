package status

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/iofog/iofog-connector/core"
)

// Summary is the daemon-wide part of the status.
type Summary struct {
	// Version is the daemon's version.
	Version string
	// Uptime is the time since the mapping manager started, rounded to
	// the second.
	Uptime time.Duration
	// Mappings is the number of mappings.
	Mappings int
	// FreePorts is the number of ports of the pool no mapping holds.
	FreePorts int
	// AgentLinks is the number of agent links, every mapping and port.
	AgentLinks int
	// PublicConnections is the number of public clients being relayed.
	PublicConnections int64
}

// SummaryOf composes the summary of a daemon of version whose manager
// reports sum, at now.
func SummaryOf(version string, sum core.Summary, now time.Time) Summary {
	return Summary{
		Version: version, Uptime: now.Sub(sum.Started).Round(time.Second),
		Mappings: sum.Mappings, FreePorts: sum.FreePorts, AgentLinks: sum.AgentLinks, PublicConnections: sum.PublicConns,
	}
}

// Mapping is the whole status of one mapping, as `mapping ls --json`,
// `mapping show --json` and `mapping add --json` print it and the control
// socket sends it.
type Mapping struct {
	ID        string `json:"id"`
	Type      string `json:"type"` // public or private
	Transport string `json:"transport"`
	Port1     int    `json:"port1"` // agent port
	Port2     int    `json:"port2"` // public port (public) or second agent port (private)
	// Passcode1 and Passcode2 are only in show and add answers: see
	// [Mapping.Public].
	Passcode1 string `json:"passcode1,omitempty"`
	Passcode2 string `json:"passcode2,omitempty"`

	MaxConnections1       int   `json:"maxConnections1"`
	MaxConnections2       int   `json:"maxConnections2"`
	HeartbeatThresholdMs1 int64 `json:"heartbeatThresholdMs1"`
	HeartbeatThresholdMs2 int64 `json:"heartbeatThresholdMs2"`
	IdleTimeoutMs         int64 `json:"idleTimeoutMs"`
	// ProxyProtocol is "v1" or "v2" when agents write a PROXY protocol
	// header to the local service of a public mapping; absent when off.
	ProxyProtocol string `json:"proxyProtocol,omitempty"`

	// State is [StateOK], [StateWaiting] (an agent port has no link yet),
	// [StateError] (a port stopped accepting and is being listened again)
	// or [StateDown] (not reopened at start); Problem says why when it is
	// not ok.
	State   string `json:"state"`
	Problem string `json:"problem,omitempty"`

	Links            int   `json:"links"`            // agent links, both ports
	Connections      int64 `json:"connections"`      // relayed connections open now
	ConnectionsTotal int64 `json:"connectionsTotal"` // relayed since start
	BytesUp          int64 `json:"bytesUp"`          // public client (or side 1) toward the agent (or side 2)
	BytesDown        int64 `json:"bytesDown"`        // the other way
	Refused          int64 `json:"refused"`          // public clients refused
	FailedHandshakes int64 `json:"failedHandshakes"` // agent connections that did not become links

	Side1 Side `json:"side1"`
	Side2 Side `json:"side2"`
}

// The states of a [Mapping].
const (
	StateOK      = "ok"
	StateWaiting = "waiting"
	StateError   = "error"
	StateDown    = "down"
)

// Side is one port of a mapping.
type Side struct {
	Port             int    `json:"port"`
	Active           bool   `json:"active"`
	Links            int    `json:"links"`
	IdleLinks        int    `json:"idleLinks"`
	Streams          int    `json:"streams"`
	FailedHandshakes int64  `json:"failedHandshakes"`
	Error            string `json:"error,omitempty"`
	Restarts         int    `json:"restarts"`
}

// MappingOf composes the status of the mapping st describes, passcodes
// included.
func MappingOf(st core.MappingStatus) Mapping {
	m := Mapping{
		ID: st.ID, Type: st.Type, Transport: st.Transport, Port1: st.Port1, Port2: st.Port2,
		Passcode1: st.Passcode1, Passcode2: st.Passcode2,
		MaxConnections1: st.MaxConnections1, MaxConnections2: st.MaxConnections2,
		HeartbeatThresholdMs1: st.Heartbeat1.Milliseconds(), HeartbeatThresholdMs2: st.Heartbeat2.Milliseconds(),
		IdleTimeoutMs: st.IdleTimeout.Milliseconds(), ProxyProtocol: st.ProxyProtocol,
		Links: st.Side1.Links + st.Side2.Links, Connections: st.Active, ConnectionsTotal: st.Total,
		BytesUp: st.BytesUp, BytesDown: st.BytesDown, Refused: st.Refused,
		FailedHandshakes: st.Side1.Failed + st.Side2.Failed,
		Side1:            sideOf(st.Side1), Side2: sideOf(st.Side2),
	}
	m.State, m.Problem = stateOf(&st)
	return m
}

func sideOf(s core.SideStatus) Side {
	return Side{Port: s.Port, Active: s.Active, Links: s.Links, IdleLinks: s.IdleLinks, Streams: s.Streams,
		FailedHandshakes: s.Failed, Error: s.Error, Restarts: s.Restarts}
}

// stateOf names the state of st and what is wrong.
func stateOf(st *core.MappingStatus) (state, problem string) {
	switch {
	case st.Down() != "":
		return StateDown, st.Down()
	case st.Problem() != "":
		return StateError, st.Problem()
	case !st.Side1.Active && st.Type == core.TypePrivate && !st.Side2.Active:
		return StateWaiting, fmt.Sprintf("no agent linked on port1 (%d) nor port2 (%d)", st.Port1, st.Port2)
	case !st.Side1.Active:
		return StateWaiting, fmt.Sprintf("no agent linked on port1 (%d)", st.Port1)
	case st.Type == core.TypePrivate && !st.Side2.Active:
		return StateWaiting, fmt.Sprintf("no agent linked on port2 (%d)", st.Port2)
	}
	return StateOK, ""
}

// Public returns m without its passcodes, as lists show it.
func (m Mapping) Public() Mapping {
	m.Passcode1, m.Passcode2 = "", ""
	return m
}

// Fault returns what is wrong with a mapping that is down or in error
// (its ports do not all accept), "" otherwise: a mapping only waiting for
// an agent has no fault.
func (m Mapping) Fault() string {
	if m.State == StateDown || m.State == StateError {
		return m.Problem
	}
	return ""
}

// IdleLinks is the number of idle agent links, both ports.
func (m Mapping) IdleLinks() int { return m.Side1.IdleLinks + m.Side2.IdleLinks }

// ActiveText names a socket's state as the legacy connector did:
// "Active" or "Inactive".
func ActiveText(active bool) string {
	if active {
		return "Active"
	}
	return "Inactive"
}

// Row is one mapping's line of [Daemon].
type Row struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Transport   string `json:"transport"`
	Port1       int    `json:"port1"`
	Port2       int    `json:"port2"`
	State1      string `json:"state1"` // "Active" or "Inactive"
	State2      string `json:"state2"`
	Links       int    `json:"links"`
	Connections int64  `json:"connections"`
	Total       int64  `json:"total"`
	Down        string `json:"down,omitempty"`  // why it was not reopened at start
	Error       string `json:"error,omitempty"` // what is wrong (or why it is down)
	Refused     int64  `json:"refused"`
	Failed      int64  `json:"failedHandshakes"`
}

// Row returns m's line of the daemon's status.
func (m Mapping) Row() Row {
	r := Row{
		ID: m.ID, Type: m.Type, Transport: m.Transport, Port1: m.Port1, Port2: m.Port2,
		State1: ActiveText(m.Side1.Active), State2: ActiveText(m.Side2.Active),
		Links: m.Links, Connections: m.Connections, Total: m.ConnectionsTotal,
		Error: m.Fault(), Refused: m.Refused, Failed: m.FailedHandshakes,
	}
	if m.State == StateDown {
		r.Down = m.Problem
	}
	return r
}

// Info is what the status says about the daemon itself.
type Info struct {
	// Version is the daemon's version.
	Version string
	// Dev is the dev setting (plain TCP and HTTP).
	Dev bool
	// API is the API's address setting.
	API string
	// DataDir is the data dir.
	DataDir string
	// Transport is the default transport; Transports every transport
	// available, sorted.
	Transport  string
	Transports []string
}

// Daemon is the whole status of a running daemon: what `iofog-connector
// status --json` prints and the control socket's GET /status sends.
type Daemon struct {
	Version           string   `json:"version"`
	PID               int      `json:"pid"`
	Uptime            string   `json:"uptime"`
	Dev               bool     `json:"dev"`
	API               string   `json:"api"`
	DataDir           string   `json:"dataDir"`
	Transport         string   `json:"transport"`
	Transports        []string `json:"transports"`
	FreePorts         int      `json:"freePorts"`
	AgentLinks        int      `json:"agentLinks"`
	PublicConnections int64    `json:"publicConnections"`
	Mappings          []Row    `json:"mappings"`
	Goroutines        int      `json:"goroutines"` // for leak checks (make soak)
}

// Source is what a [Reporter] reads: the mapping manager's snapshots.
// *core.Manager has it.
type Source interface {
	Summary() core.Summary
	List() []core.MappingStatus
}

// Reporter composes the status of one running daemon. It is safe for
// concurrent use.
type Reporter struct {
	info Info
	src  Source
	now  func() time.Time
}

// NewReporter returns the reporter of the daemon described by info whose
// mappings src holds. now returns the time; nil means time.Now.
func NewReporter(info Info, src Source, now func() time.Time) *Reporter {
	if now == nil {
		now = time.Now
	}
	return &Reporter{info: info, src: src, now: now}
}

// Summary returns the daemon-wide status.
func (r *Reporter) Summary() Summary { return SummaryOf(r.info.Version, r.src.Summary(), r.now()) }

// Daemon returns the whole status, every mapping's line included.
func (r *Reporter) Daemon() Daemon {
	sum := r.Summary()
	d := Daemon{
		Version: r.info.Version, PID: os.Getpid(), Uptime: sum.Uptime.String(),
		Dev: r.info.Dev, API: r.info.API, DataDir: r.info.DataDir,
		Transport: r.info.Transport, Transports: r.info.Transports,
		FreePorts: sum.FreePorts, AgentLinks: sum.AgentLinks, PublicConnections: sum.PublicConnections,
		Mappings: []Row{},
	}
	d.Goroutines = runtime.NumGoroutine()
	for _, st := range r.src.List() {
		d.Mappings = append(d.Mappings, MappingOf(st).Row())
	}
	return d
}
