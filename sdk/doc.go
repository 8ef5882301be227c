// Package sdk is the stable contract between the iofog-connector core and
// the transports that carry bytes between the connector and its agents.
//
// It heads the only package tree of this module with a compatibility
// promise, fenced in the section Stability below: in the stable packages,
// exported names change only in a backwards-compatible way, and new
// capabilities arrive as optional interfaces rather than new methods.
//
// # The model
//
// A mapping has one or two agent-facing endpoints ("port1", and for a private
// pipe "port2"). For each of them the core calls [Transport.Listen] with an
// [EndpointConfig] carrying the address, passcode, link limit and heartbeat
// threshold. The transport owns everything about that agent port: accepting
// agents, authenticating them, keeping idle links alive and closing links
// that fall silent. The core only ever sees streams, as [net.Conn] values:
//
//   - [Endpoint.Open] hands the core a stream toward an agent. The agent
//     dials its local service for it (public pipes, and the serving side of a
//     private pipe). The core calls it once per public client.
//   - [Endpoint.Accept] hands the core a stream that an agent started (the
//     listening side of a private pipe, and legacy private links). The core
//     pairs it with a stream from the other side of the mapping.
//
// The agent half mirrors it: [Transport.Dial] returns a [Session], whose
// [Session.Accept] yields streams the connector opened and whose
// [Session.Open] starts a stream toward the connector.
//
// A transport may carry one stream per network connection (the built-in
// tcp transport) or many (yamux, quic); the interfaces do not care.
//
// # Streams
//
// Every stream is a [net.Conn]. Streams should also implement [CloseWriter]
// so that half-close (FIN) crosses the relay in both directions. The core
// copies bytes with [io.Copy]; a transport that returns a bare
// *net.TCPConn gets the kernel's zero-copy splice for free, so wrap a
// connection only when the wire format requires it.
//
// # Example
//
// A minimal transport that listens on TCP:
//
//	type myTransport struct{}
//
//	func (myTransport) Name() string { return "mine" }
//
//	func (myTransport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
//		if err := cfg.Validate(); err != nil {
//			return nil, err
//		}
//		ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
//		if err != nil {
//			return nil, fmt.Errorf("mine: listen %s: %w", cfg.Addr, err)
//		}
//		return newEndpoint(ln, cfg), nil // authenticates agents, pools links
//	}
//
//	func (myTransport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
//		return newSession(cfg), nil
//	}
//
// Run the conformance suite in sdk/transporttest from the transport's tests,
// and serve it out of process with sdk/plugin.
//
// # Stability
//
// The packages under sdk/ are of three kinds; each says which in its own
// documentation.
//
// Stable, the contract: their exported names change only in a
// backwards-compatible way (names are added, never removed or changed; a
// new method of an interface that others implement arrives as a new
// optional interface; a configuration struct gains fields whose zero value
// keeps the old behaviour). A change that breaks this is a new major
// version of the module.
//
//   - sdk: the transport contract ([Transport], [Endpoint], [Session],
//     their configs, errors, capabilities, origins, [ProtocolVersion]).
//   - sdk/plugin: serving a transport from a separate executable, and the
//     host side that loads it; the plugin protocol is versioned by
//     [ProtocolVersion].
//   - sdk/transporttest: the conformance suite and its helpers. Its
//     functions and options are stable; the checks grow with the contract,
//     so a later release may add a subtest a transport then has to pass.
//   - sdk/agent: the agent side of a mapping over any transport.
//   - sdk/proxyproto: PROXY protocol headers (versions 1 and 2).
//
// Kits, exported building blocks with no compatibility promise: a
// transport or a tool may use them, and any release may change them (the
// release notes list what changed). A stable package never exposes a kit's
// type in its own API.
//
//   - sdk/streamkit: a whole one-connection-per-stream transport, given
//     its dial and listen functions.
//   - sdk/muxkit: the bookkeeping of a multiplexing transport.
//   - sdk/pipe: joining two streams, half-close and splice included.
//   - sdk/admission: accept loops, per-source limits and aggregate logging.
//   - sdk/profiling: Go's profiling endpoints on a loopback address, for
//     the daemon, the agent and plugin processes.
//   - sdk/reclaim: memory handed back to the kernel once a process goes
//     quiet after a burst.
//   - sdk/plugin/plugintest: a plugin built and started as a real process,
//     for its own tests.
//
// Internal (sdk/internal/..., sdk/plugin/internal/...): not importable
// from outside this module, no promise at all.
//
// make api-check enforces the promise: it compares the exported API of
// these packages with sdk/api/v0.txt, the snapshot of the last release,
// fails when a stable package loses a name or changes one, and reports
// additions and kit changes. make api-snapshot records a new baseline,
// deliberately (see docs/sdk-api.md). The classification lives in
// internal/apicheck; an sdk package it does not classify fails the check.
package sdk
