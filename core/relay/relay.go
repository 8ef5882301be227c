// Package relay moves bytes between two streams and serves the public and
// private sides of a mapping over transport endpoints.
package relay

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Opener is the part of an [sdk.Endpoint] a public pipe needs.
type Opener interface {
	Open(ctx context.Context) (net.Conn, error)
}

// Counters are live figures of one mapping's relay, safe for concurrent use.
type Counters struct {
	// Active is the number of relayed connections now open.
	Active atomic.Int64
	// Total is the number of connections relayed since start.
	Total atomic.Int64
	// Refused counts public clients closed because no agent link came in time.
	Refused atomic.Int64
	// BytesUp counts bytes from public clients (or side 1) toward agents (side 2).
	BytesUp atomic.Int64
	// BytesDown counts bytes in the other direction.
	BytesDown atomic.Int64
}

// PublicConfig configures [ServePublic].
type PublicConfig struct {
	// WaitTimeout bounds how long a public client waits for an agent link.
	// Zero means 5 seconds.
	WaitTimeout time.Duration
	// Counters, when not nil, receives live figures.
	Counters *Counters
	// Logger receives the relay's logs. Nil means discard.
	Logger *slog.Logger
}

// PrivateConfig configures [ServePrivate].
type PrivateConfig struct {
	// Counters, when not nil, receives live figures.
	Counters *Counters
	// Logger receives the relay's logs. Nil means discard.
	Logger *slog.Logger
}

var _ = sdk.ModePublic
