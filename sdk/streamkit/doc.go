// Package streamkit is a kit, not part of the stable contract of package
// sdk: it carries a whole one-connection-per-stream transport, so that a
// transport over any carrier that produces [net.Conn] values (TCP, TLS,
// WebSocket, ...) is its dial and listen functions plus configuration:
//
//	var ws = streamkit.New(streamkit.Config{
//		Name:   "websocket",
//		Listen: listenWS, // func(ctx, sdk.EndpointConfig) (net.Listener, error)
//		Dial:   dialWS,   // func(ctx, sdk.DialConfig) (net.Conn, error)
//	})
//
// [ListenTCP] and [DialTCP] are the carrier of TCP (TLS when the config
// has it); [Listener] turns connections that arrive by callback (an HTTP
// handler) into a [net.Listener]. The kit does the rest, on both halves:
// the passcode handshake, sessions and their heartbeats (a side that
// hears nothing for the heartbeat threshold drops the session and aborts
// its streams, so their relays see an error rather than an end), binding
// a connection to each stream the connector opens, carrying that stream's
// origin ([sdk.WithOrigin], [sdk.OriginStream]), admission
// ([sdk.EndpointConfig].MaxLinks, a cap on the handshakes one source has
// pending, failures counted by reason in [sdk.EndpointStats] and logged in
// aggregate, see package sdk/admission), an accept loop that survives
// transient errors, and [sdk.Stopper].
//
// # Wire format
//
// Every carrier connection starts with "REF1", a kind byte, a one-byte
// passcode length, the passcode and, for stream connections, the 8-byte
// session id (kind 'O', a stream the agent opens) or the session id and
// the 8-byte stream id (kind 'D', a stream the connector asked for). The
// connector answers one status byte (0 ok, 1 bad passcode, 2 link limit,
// 3 unknown id) and, for a control connection, the 8-byte session id. It
// closes a connection of a kind it does not know unanswered.
//
// A session (a link, counted by MaxLinks) is one control connection, of
// kind 'C' or 'c'. It carries heartbeats ('B' both ways: the connector
// echoes each), the endpoint's heartbeat threshold ('T', whole
// milliseconds in ASCII decimal, ';', sent once after the answer; agents
// beat at a quarter of it, see [BeatInterval]) and stream requests: 'P'
// and the stream id, or, to agents whose control connection is of kind
// 'c', 'Q', the id, a length byte and the stream's origin in
// [sdk.Origin.AppendBinary]'s form. Agents dial 'c' first; a connector
// that closes it unanswered (an earlier release) is dialled again with
// 'C'. An agent that knows neither 'T' nor 'Q' takes any byte but 'P' for
// a sign of life. Every stream is a carrier connection of its own, which
// the agent dials when it reads the request.
//
// Idle links: an agent session also keeps a few carrier connections of
// kind 'I' dialled ahead (Config.IdleLinks). Its header carries no ids;
// once the connector answers 0, the agent sends the 8-byte session id and
// the connector answers again (0, or 3 for an unknown session) and holds
// the link idle. To bind a stream to it, the connector writes the stream
// request ('P' with id 0, or 'Q' with id 0 and the origin) on the link
// itself; the agent answers 0 and the link is the stream from then on,
// and the agent dials another. A bind not answered within a few seconds
// falls back to a request on the control connection. A connector of an
// earlier release closes an 'I' connection unanswered (it reads no ids
// for a kind it does not know, so it leaves no byte unread), and the
// session then keeps no idle links.
//
// The reference transport (sdk/internal/reftransport, over TCP) and the
// WebSocket example (examples/websocket-transport) are built on this kit.
//
// As a kit (see "Stability" in package sdk), its API may change in any
// release; make api-check reports such changes for the release notes.
package streamkit
