// Package agent is the agent side of the connector: it exposes a local
// service through a mapping, over any [sdk.Transport].
//
//   - [RunPublic] serves the agent port of a public mapping: it keeps a
//     pool of links ready and, for each public client the connector binds
//     to one, dials the local service and relays both ways. On a transport
//     that makes one connection per stream (tcp) the pool's workers share
//     one session, and the pool can grow under demand (PublicConfig.MaxPool).
//   - [RunPrivate] serves one side of a private mapping: either it dials a
//     local service for each stream that arrives (like RunPublic), or it
//     listens locally and carries each accepted local connection over a
//     new stream to the other side.
//
// When the connector sends a stream's origin (the mapping has a PROXY
// protocol version, and the transport carries origins: see [sdk.Origin]),
// the agent writes a PROXY protocol header of that version with the public
// client's address to the local service before the stream's first byte.
//
// Both reconnect with exponential backoff and jitter, log with the
// injected slog.Logger, and return nil once their context is cancelled,
// after every relay they started has ended.
//
// This package is part of the stable contract of the sdk (see "Stability"
// in package sdk): its exported names change only in a
// backwards-compatible way, and make api-check enforces it.
package agent
