// Package relay serves the public and private sides of a mapping: it takes
// streams from transport endpoints and joins them with public clients or
// with each other. It enforces the mapping's maxconnections on every
// transport alike, counting the streams it holds per side ([Limit]), and
// learns that a stream ended from its own close, never by watching
// sockets.
package relay

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// Opener is the part of an sdk.Endpoint a public pipe needs.
type Opener interface {
	Open(ctx context.Context) (net.Conn, error)
}

// Counters are live figures of one mapping's relay, safe for concurrent use.
type Counters struct {
	// Active is the number of relayed connections now open.
	Active atomic.Int64
	// Total is the number of connections relayed since start.
	Total atomic.Int64
	// Refused counts public clients closed because no agent link came in
	// time, because too many clients were waiting (see PublicConfig), or
	// because their TLS handshake failed, or because the mapping held its
	// maxconnections relayed connections for the whole wait timeout: the
	// sum of RefusedNoAgent, RefusedTooMany, RefusedTLS and
	// RefusedAtLimit. For a private mapping it counts the streams closed
	// at the limit (RefusedAtLimit).
	Refused atomic.Int64
	// RefusedNoAgent counts the public clients closed because no agent
	// link came within the wait timeout (or the endpoint failed).
	RefusedNoAgent atomic.Int64
	// RefusedTooMany counts the public clients closed at once because
	// too many clients were waiting (PublicConfig.MaxWaiting and
	// MaxWaitingPerSource).
	RefusedTooMany atomic.Int64
	// RefusedTLS counts the public clients whose TLS handshake failed.
	RefusedTLS atomic.Int64
	// RefusedAtLimit counts the public clients closed because the
	// mapping's maxconnections streams stayed held for the whole wait
	// timeout, and the private streams closed at once because their side
	// held its maxconnectionsportN streams.
	RefusedAtLimit atomic.Int64
	// Waiting is the number of public clients accepted and waiting for an
	// agent link (their TLS handshake included).
	Waiting atomic.Int64
	// BytesUp counts bytes from public clients (or side 1) toward agents
	// (or side 2).
	BytesUp atomic.Int64
	// BytesDown counts bytes in the other direction.
	BytesDown atomic.Int64
}

// pipeOptions returns the options of one relay with idle timeout idle:
// the pipe adds its bytes to c's byte counters as they move, so a live
// relay's traffic shows before it ends; c may be nil.
func (c *Counters) pipeOptions(idle time.Duration) pipe.Options {
	o := pipe.Options{IdleTimeout: idle}
	if c != nil {
		o.AToB, o.BToA = &c.BytesUp, &c.BytesDown
	}
	return o
}

func (c *Counters) begin() {
	if c != nil {
		c.Active.Add(1)
		c.Total.Add(1)
	}
}

func (c *Counters) end() {
	if c != nil {
		c.Active.Add(-1)
	}
}

// refuse counts a refused public client in Refused and in by, one of c's
// RefusedXxx counters.
func (c *Counters) refuse(by func(*Counters) *atomic.Int64) {
	if c != nil {
		by(c).Add(1)
		c.Refused.Add(1)
	}
}

func noAgent(c *Counters) *atomic.Int64 { return &c.RefusedNoAgent }
func tooMany(c *Counters) *atomic.Int64 { return &c.RefusedTooMany }
func badTLS(c *Counters) *atomic.Int64  { return &c.RefusedTLS }
func atLimit(c *Counters) *atomic.Int64 { return &c.RefusedAtLimit }

// wait counts a public client waiting for an agent link, and returns
// what ends its wait (idempotent).
func (c *Counters) wait() (done func()) {
	if c == nil {
		return func() {}
	}
	c.Waiting.Add(1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			c.Waiting.Add(-1)
		}
	}
}

// DefaultWaitTimeout is how long a public client waits for an agent link
// when PublicConfig.WaitTimeout is zero.
const DefaultWaitTimeout = 5 * time.Second

// PublicConfig configures [ServePublic].
type PublicConfig struct {
	// MaxWaiting caps the public clients waiting for an agent link at
	// once; MaxWaitingPerSource caps those of one source (an IPv4 address
	// or an IPv6 /64). Clients beyond either are closed at once and
	// counted as refused. Zero means DefaultMaxWaiting and
	// DefaultMaxWaitingPerSource; negative means no cap.
	MaxWaiting, MaxWaitingPerSource int
	// WaitTimeout bounds how long a public client waits for an agent link;
	// its bytes stay in its socket meanwhile, so none are lost. Zero means
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake of a public client when
	// the listener is a TLS listener. Zero means 10 seconds.
	HandshakeTimeout time.Duration
	// Counters, when not nil, receives live figures.
	Counters *Counters
	// Logger receives the relay's logs. Nil means discard.
	Logger *slog.Logger
	// IdleTimeout closes a relayed client and its stream once no byte has
	// moved either way for that long. Zero means never.
	IdleTimeout time.Duration
	// Proxy, when not sdk.ProxyNone, passes each client's origin to
	// Open (sdk.WithOrigin), so that the agent writes a PROXY protocol
	// header of that version to its local service.
	Proxy sdk.ProxyVersion
	// Limit counts the streams of the agent port and caps them at the
	// mapping's maxconnections: a client beyond it waits for a relayed
	// connection to end (within WaitTimeout) before its stream is
	// opened. Nil means no cap and no count.
	Limit *Limit
}

// PrivateConfig configures [ServePrivate].
type PrivateConfig struct {
	// Counters, when not nil, receives live figures.
	Counters *Counters
	// Logger receives the relay's logs. Nil means discard.
	Logger *slog.Logger
	// IdleTimeout closes a joined pair of streams once no byte has moved
	// either way for that long. Zero means never.
	IdleTimeout time.Duration
	// Limits count the streams of side 1 and side 2 and cap them at
	// maxconnectionsport1 and maxconnectionsport2: a stream an agent
	// starts beyond its side's cap is closed at once (counted in
	// Counters.RefusedAtLimit and logged), and no stream is opened
	// toward a side at its cap until one of its streams ends. Nil means
	// no cap and no count.
	Limits [2]*Limit
}
