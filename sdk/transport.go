package sdk

import (
	"context"
	"net"
)

// Transport is one way of carrying streams between the connector and its
// agents. It has a connector half ([Transport.Listen]) and an agent half
// ([Transport.Dial]).
//
// A Transport must be safe for concurrent use by multiple goroutines. It
// holds no per-mapping state itself: everything a mapping needs lives in the
// [Endpoint] or [Session] it returns.
type Transport interface {
	// Name returns the transport's registry name, such as "tcp". It is what
	// a mapping names in its "transport" field. It must be constant, short,
	// lowercase and match [ValidName].
	Name() string

	// Listen starts serving the agent side of one mapping endpoint on
	// cfg.Addr and returns once the address is bound. It returns an error
	// wrapping the bind failure (for example syscall.EADDRINUSE) if the
	// address cannot be bound, and [ErrInvalidConfig] if cfg is invalid.
	// ctx bounds only the start-up; the endpoint lives until its Close.
	Listen(ctx context.Context, cfg EndpointConfig) (Endpoint, error)

	// Dial prepares the agent half: a [Session] that reaches the endpoint
	// at cfg.Addr with cfg.Passcode. A transport may connect eagerly (one
	// session per network connection, as yamux does) or lazily (one
	// network connection per stream, as tcp does); in both cases a refused
	// passcode surfaces as [ErrBadPasscode] from Dial or from the first
	// Accept or Open.
	Dial(ctx context.Context, cfg DialConfig) (Session, error)
}

// Endpoint is the connector half of one agent port of a mapping.
//
// All methods are safe for concurrent use. Close unblocks every pending
// Open and Accept, which then return an error satisfying
// errors.Is(err, net.ErrClosed). Streams already handed out stay open after
// Close returns and are the caller's to close; links that were idle are
// closed by Close.
type Endpoint interface {
	// Open returns a new stream toward an authenticated agent, which
	// relays it to its local service. It blocks until a link is available
	// or ctx is done, in which case it returns ctx.Err(). Each stream is
	// used for exactly one client and never reused. The caller closes it.
	//
	// The core calls Open only while it holds fewer streams on this
	// endpoint than the mapping's maxconnections for the side (see
	// [EndpointConfig]); a transport need not count streams itself.
	Open(ctx context.Context) (net.Conn, error)

	// Accept returns the next stream an agent started. It blocks until one
	// arrives or ctx is done (returning ctx.Err()). The caller closes it.
	//
	// A stream that arrives while the core already holds the side's
	// maxconnections streams is closed by the core at once (and logged).
	Accept(ctx context.Context) (net.Conn, error)

	// Close stops listening, closes idle links and unblocks pending calls.
	// It is idempotent and returns once the endpoint's goroutines exit.
	Close() error
}

// Session is the agent half: a live relationship with one endpoint.
//
// All methods are safe for concurrent use. After Close, or once the
// underlying connection fails, Accept and Open return an error; the agent
// then dials a new Session (with backoff).
type Session interface {
	// Accept waits for the connector to bind a stream to this agent (a
	// public client arrived, or the other side of a private pipe opened a
	// stream). The agent dials its local service and relays the stream.
	// It blocks until a stream arrives, ctx is done (ctx.Err()), or the
	// session fails (an error wrapping the cause, or [ErrBadPasscode]).
	Accept(ctx context.Context) (net.Conn, error)

	// Open starts a new stream toward the connector, which carries it to
	// the other side of a private pipe. It blocks until the connector has
	// taken the stream or ctx is done.
	Open(ctx context.Context) (net.Conn, error)

	// Close ends the session and its idle links. It is idempotent. Streams
	// already returned stay open and are the caller's to close.
	Close() error
}

// CloseWriter is implemented by streams that support half-close: after
// CloseWrite the peer reads io.EOF, while reads in this direction go on.
// *net.TCPConn, *tls.Conn and yamux and QUIC stream adapters implement it.
type CloseWriter interface {
	CloseWrite() error
}

// StreamObserver is an optional interface of an [Endpoint] that wants to
// learn when the core is done with a stream, instead of watching sockets.
// The core closes every stream it gets from Open or Accept and then calls
// StreamClosed exactly once with that very value (the one Open or Accept
// returned), whether the stream was relayed, refused at the mapping's
// limit or dropped unused. After an endpoint was listened again (see
// [Stopper]) it may be told of streams of its predecessor: it ignores
// streams it does not know. StreamClosed must not block.
type StreamObserver interface {
	StreamClosed(c net.Conn)
}

// StatsReporter is an optional interface of an [Endpoint] that reports its
// live state, shown by the connector's status command and API.
type StatsReporter interface {
	// Stats returns a snapshot. It must be cheap and never block.
	Stats() EndpointStats
}

// Stopper is an optional interface of an [Endpoint] that can stop serving
// on its own: its accept loop met an error that retrying cannot cure (the
// listening socket failed, the plugin process lost it). Transient faults,
// such as running out of descriptors for a while, do not stop it. The core
// probes it with a type assertion, shows the cause in its status and
// restarts the endpoint (closes it and listens again with the same
// config); an endpoint without it is assumed to serve until closed.
type Stopper interface {
	// Done returns a channel that is closed once the endpoint stopped
	// accepting agents for good: after Close, or on its own. It must be
	// cheap and return the same channel every time.
	Done() <-chan struct{}
	// Err returns nil while Done is open and when Close closed it, and
	// the error that stopped the endpoint when it stopped on its own (a
	// later Close keeps it).
	Err() error
}

// EndpointStats is a snapshot of one endpoint's state.
type EndpointStats struct {
	// Links is the number of authenticated agent connections (links or
	// sessions) currently open, idle or carrying streams.
	Links int
	// IdleLinks is how many links wait for a stream (pooled links of a
	// one-stream-per-connection transport). Zero for multiplexing transports.
	IdleLinks int
	// Streams is the number of streams handed out and not yet closed, when
	// the transport can tell; otherwise zero. The core does not rely on
	// it: the stream counts it reports are its own (exact) count of the
	// streams it holds.
	Streams int
	// Failed counts the agent connections that did not become links since
	// the endpoint started: failed handshakes (wrong passcode, bytes that
	// are not the protocol, timeouts) and connections refused at a limit.
	// Zero when the transport does not count them.
	Failed int64
	// FailedByReason splits Failed by why the connection did not become a
	// link, keyed by the Failure* constants (bad_passcode, limit,
	// timeout, closed, protocol). It is nil when nothing failed, or when
	// the transport does not split its failures; its values then add up
	// to less than Failed, and a reader counts the rest as of unknown
	// reason. Readers must not modify it.
	FailedByReason map[string]int64
}

// Reasons an agent connection did not become a link: the keys of
// [EndpointStats.FailedByReason]. New reasons may be added.
const (
	// FailureBadPasscode: the agent sent a passcode that is not the
	// endpoint's.
	FailureBadPasscode = "bad_passcode"
	// FailureLimit: the endpoint held its maximum of links
	// ([EndpointConfig.MaxLinks]), or the source had too many handshakes
	// pending.
	FailureLimit = "limit"
	// FailureTimeout: the handshake did not end in time.
	FailureTimeout = "timeout"
	// FailureClosed: the peer closed or reset the connection during the
	// handshake.
	FailureClosed = "closed"
	// FailureProtocol: the peer did not speak the handshake (bytes that
	// are not the protocol, a failed TLS handshake, an incompatible
	// protocol version) or the handshake failed otherwise.
	FailureProtocol = "protocol"
)

// Multiplexer is an optional interface of a [Transport] whose sessions
// carry many streams over one network connection (yamux, quic). Agents
// keep one such session by default instead of a pool of links.
type Multiplexer interface {
	// Multiplexed reports whether one Session carries many streams.
	Multiplexed() bool
}
