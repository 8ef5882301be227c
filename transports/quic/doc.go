// Package quic is the connector's QUIC transport (quic-go): each agent
// session is one QUIC connection to the agent port (UDP), and every public
// client or private-pipe stream is a QUIC stream on it. TLS 1.3 is always
// on, with the ALPN name [ALPN]; in the connector's dev mode the transport
// uses a self-signed identity it generates once and persists (see
// [Config.IdentityDir]), which agents trust with --ca or a fingerprint pin.
//
// The first stream of a connection carries the passcode handshake; the
// connector refuses a bad passcode or a full endpoint by closing the
// connection with an application error code the agent maps to
// sdk.ErrBadPasscode or sdk.ErrLinkLimit. QUIC keepalives and the idle
// timeout, tied to the heartbeat threshold, replace the tcp transport's
// BEAT, and connection migration lets an agent's session survive a change
// of its local address.
//
// Build one with [New]; the daemon registers it under the name "quic".
package quic
