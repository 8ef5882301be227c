package muxkit

import (
	"context"
	"net"
)

// Stream is one stream of a multiplexed connection, adapted by the
// transport to the [net.Conn] semantics of the sdk.
type Stream interface {
	net.Conn
	// OnClose sets f to be called once, by the first Close of the
	// stream. The [Endpoint] and [Session] call it before they hand the
	// stream out and never after, so it needs no locking against Close.
	OnClose(f func())
}

// Conn is one authenticated multiplexed connection (a link), as an
// [Endpoint] and a [Session] need it. Its methods may be called from
// several goroutines at once.
type Conn interface {
	// OpenStream opens a new stream to the peer. It blocks until the
	// stream is open, ctx ends or the connection fails.
	OpenStream(ctx context.Context) (Stream, error)
	// AcceptStream returns the next stream the peer opened. It blocks
	// until there is one, ctx ends or the connection fails; after the
	// peer's go-away it returns an error and [Conn.GoneAway] is true.
	AcceptStream(ctx context.Context) (Stream, error)
	// GoAway tells the peer to open no more streams; open streams go on.
	GoAway()
	// GoneAway reports whether the peer said it takes no more streams.
	GoneAway() bool
	// Probe checks that the peer still answers, within ctx; nil when it
	// does or when the transport cannot tell.
	Probe(ctx context.Context) error
	// Close closes the connection and every stream on it.
	Close() error
	// Done is closed when the connection has ended, for whatever reason.
	Done() <-chan struct{}
}
