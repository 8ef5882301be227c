package streamkit

import (
	"context"
	"fmt"

	"github.com/iofog/iofog-connector/sdk"
)

// Config is what a transport built on the kit supplies.
type Config struct {
	// Name is the transport's registry name ([sdk.ValidName]). Required.
	Name string
	// Listen binds an endpoint's agent port. Required.
	Listen ListenFunc
	// Dial opens one carrier connection to an endpoint. Required.
	Dial DialFunc
	// IdleLinks is how many idle links each agent session keeps dialled
	// ahead: the connector binds a stream to one of them at once (one
	// round trip) instead of asking the agent to dial one (a dial and
	// its handshakes). Zero means [DefaultIdleLinks]; negative means
	// none, every stream is dialled when the connector asks for it.
	IdleLinks int
}

// DefaultIdleLinks is how many idle links an agent session keeps when
// Config.IdleLinks is zero.
const DefaultIdleLinks = 2

// Transport is an [sdk.Transport] built from a [Config]. It is safe for
// concurrent use; it holds no per-mapping state.
type Transport struct {
	cfg Config
	// fault, in this package's tests, breaks one rule on purpose so that
	// the conformance suite can be shown to catch it.
	fault string
}

// New returns the transport cfg describes. It panics when cfg lacks a
// valid Name, Listen or Dial: a programming error of the transport.
func New(cfg Config) *Transport {
	if !sdk.ValidName(cfg.Name) || cfg.Listen == nil || cfg.Dial == nil {
		panic(fmt.Sprintf("streamkit: New needs a valid Name, Listen and Dial (name %q)", cfg.Name))
	}
	if cfg.IdleLinks == 0 {
		cfg.IdleLinks = DefaultIdleLinks
	}
	return &Transport{cfg: cfg}
}

// Name implements [sdk.Transport].
func (t *Transport) Name() string { return t.cfg.Name }

// Listen implements [sdk.Transport]: it binds cfg.Addr with Config.Listen
// and serves agents there until Close. The endpoint implements
// [sdk.StatsReporter] and [sdk.Stopper].
func (t *Transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := t.cfg.Listen(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.cfg.Name, err)
	}
	return newEndpoint(t, cfg, ln), nil
}

// Dial implements [sdk.Transport]: it connects a session's control
// connection at once. The session implements HeartbeatThreshold()
// time.Duration (the threshold its connector told it, zero until told),
// which sdk/plugin reads.
func (t *Transport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := dial(ctx, t, cfg)
	if err != nil {
		return nil, err // not a nil *session in a non-nil interface
	}
	return s, nil
}

// Capabilities reports what the transport's streams can do beyond the
// sdk.Transport contract: they half-close ([sdk.CloseWriter], when the
// carrier's connections do; otherwise CloseWrite closes) and carry
// origins ([sdk.OriginStream]). One session carries one stream per
// carrier connection: the transport is not an [sdk.Multiplexer].
func (t *Transport) Capabilities() sdk.Capabilities {
	return sdk.Capabilities{HalfClose: true, Origins: true}
}

var _ sdk.Transport = (*Transport)(nil)
