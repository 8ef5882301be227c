// Package sdk is the stable contract between the iofog-connector core and
// the transports that carry bytes between the connector and its agents.
//
// It is the only package tree of this module with a compatibility promise:
// exported names here change only in a backwards-compatible way, and new
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
package sdk
