// Package tcp is the connector's built-in, default transport: one TCP (or
// TLS) connection per stream, with the connector relaying bound links by
// the kernel's zero-copy splice.
//
// One agent port serves two kinds of agents, told apart by their first
// byte:
//
//   - Legacy ioFog agents write their passcode's ASCII bytes, the connector
//     answers exactly "AUTHORIZED", and the link carries data with 4-byte
//     "BEAT" heartbeats mixed in, which the connector answers and never
//     forwards (see docs/ioFog-contract.md, "Legacy agent protocol").
//   - Our agents send a versioned hello that starts with the byte 0xF0,
//     which no passcode (an ASCII string) can start with. An idle link
//     ("pool" role) beats with single-byte frames; when the connector binds
//     it to a client it sends a bind frame, the agent dials its local
//     service at once and the link becomes a bare byte pipe. Up to version
//     3 the agent acknowledges the bind and the connector waits for that;
//     from version 4 the connector beats idle links itself (the agent
//     echoes), so it knows when no agent byte is in flight, and hands the
//     link out right after the bind frame, without a round trip. A
//     link in the "open" role is a stream the agent started; it is a bare
//     byte pipe as soon as it is accepted. Since protocol version 2 each
//     agent session names itself with an instance id and keeps a "control"
//     link that beats; the connector tells the agent its heartbeat
//     threshold in the answer, and closes every stream it handed out for an
//     instance whose control link dies or falls silent past the threshold,
//     since bare pipes cannot beat. Version 1 agents are still served.
//
// Streams the connector half returns for our agents in plain mode are the
// bare *net.TCPConn, so a relay between two of them splices.
package tcp
