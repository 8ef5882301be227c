// Package yamux is the connector's multiplexing transport: each agent keeps
// one authenticated TCP (or TLS) connection per session to the agent port,
// and every public client or private-pipe stream is a yamux stream on it.
//
// A connection starts with a short handshake (magic, protocol version,
// passcode; the connector answers ok, bad passcode or link limit, and from
// version 2 on tells the agent the mapping's heartbeat threshold) and then
// runs yamux, the connector as yamux server and the agent as client. yamux
// keepalive pings replace the tcp transport's BEAT: a session whose peer
// stops answering is closed within the configured heartbeat threshold, and
// its streams then fail with [ErrSessionLost]; agents ping at a quarter of
// the threshold they are told.
//
// Build one with [New]; the daemon registers it under the name "yamux".
package yamux
