// Package muxkit holds the bookkeeping a multiplexing transport needs on
// both sides of a mapping, so that a transport only has to adapt its
// multiplexer's connections and streams:
//
//   - [Endpoint] is the connector half: it admits authenticated
//     connections ("links") under a link limit, closing idle links whose
//     peer stopped answering to make room ([Endpoint.Reserve]), hands out
//     streams round robin ([Endpoint.Open]) and those agents open
//     ([Endpoint.Accept]), and closes by the rules of [sdk.Endpoint]:
//     links carrying streams are told to open no more and close with their
//     last stream. [Serve] is the transport's accept loop: it survives
//     transient accept errors (out of descriptors) with backoff and
//     reports any other through [sdk.Stopper]; [Endpoint.Enter] caps the
//     handshakes pending per source and [Endpoint.Failed] counts failed
//     ones, logged in aggregate (package sdk/admission).
//   - [Session] is the agent half: one link, whose Close leaves open
//     streams working, as [sdk.Session] requires.
//   - [Handshake] is the passcode exchange an agent runs before the
//     multiplexer starts, and the connector's one-byte [Answer], followed
//     from hello version 2 on by [Terms] (the heartbeat threshold the agent
//     derives its keepalive from, see [BeatInterval]). From hello
//     [Version3] on, the connector writes each stream's origin (a public
//     client's address, [sdk.Origin]) at the start of the streams it
//     opens: a transport passes the hello to [Endpoint.AddHello] and its
//     version to [NewSessionVersion], and the agent's streams then report
//     it ([sdk.OriginStream]). [Version4] announces the transport's stream
//     abort (transports/yamux's, on its control stream); [DialVersions] is
//     the agent's fallback to older versions.
//
// A transport implements [Conn] over its multiplexed connection and
// [Stream] over its streams (a [net.Conn] with the semantics of the sdk:
// Close ends both directions, CloseWrite half-closes, timeouts wrap
// os.ErrDeadlineExceeded). transports/yamux and transports/quic are built
// this way.
//
// The package imports the standard library and sdk only. Its tests drive
// it over an in-memory [Conn] made of net.Pipe streams; the stream
// semantics themselves are the transport's, and are checked by each
// transport's run of sdk/transporttest.
//
// This package is a kit, not part of the stable contract (see "Stability"
// in package sdk): transports and tools may use it, and any release may
// change its API; make api-check reports such changes for the release
// notes.
package muxkit
