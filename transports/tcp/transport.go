package tcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/iofog/iofog-connector/sdk"
)

// Name is the transport's registry name.
const Name = "tcp"

// Transport is the tcp transport. It is safe for concurrent use and holds
// no per-mapping state.
type Transport struct {
	cfg Config
	log *slog.Logger
}

// New returns a tcp transport. log receives transport-wide logs; each
// endpoint and session logs to its config's Logger. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Transport{cfg: cfg, log: sdk.Logger(log)}, nil
}

// Name implements [sdk.Transport.Name].
func (t *Transport) Name() string { return Name }

// Listen implements [sdk.Transport.Listen]. The returned endpoint also has
// an Addr() net.Addr method and implements [sdk.StatsReporter].
//
// In [sdk.ModePublic], pool links of our agents and legacy links are
// handed out by Open; in [sdk.ModePrivate] legacy links go to Accept (the
// core pairs them) while pool links still serve Open. Streams our agents
// start ("open" role) go to Accept in both modes.
func (t *Transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if len(cfg.Passcode) > maxPasscode {
		return nil, fmt.Errorf("%s: %w: passcode longer than %d bytes", Name, sdk.ErrInvalidConfig, maxPasscode)
	}
	if cfg.Passcode[0] == magicByte {
		return nil, fmt.Errorf("%s: %w: passcode starts with the protocol's magic byte", Name, sdk.ErrInvalidConfig)
	}
	// KeepAlive -1: admit sets each link's keepalive (tuneLiveness), so
	// the default one would cost four more setsockopt calls per link.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", Name, err)
	}
	return newEndpoint(ln, cfg, &t.cfg), nil
}

// Dial implements [sdk.Transport.Dial]. It connects lazily: nothing is
// dialled until the session's Accept or Open, which then report a refused
// passcode or a full endpoint as [sdk.ErrBadPasscode] or
// [sdk.ErrLinkLimit].
func (t *Transport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newSession(t, cfg), nil
}

var _ sdk.Transport = (*Transport)(nil)
