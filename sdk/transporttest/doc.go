// Package transporttest is the conformance suite for [sdk.Transport]: the
// transport contract in executable form, in the spirit of
// golang.org/x/net/nettest. A transport runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
//			return mytransport.New(), transporttest.Options{}
//		})
//	}
//
// Every subtest gets a fresh transport from the [MakeTransport] function,
// endpoints on loopback ports the kernel chose (the suite probes a free
// port, then passes it as EndpointConfig.Addr, retrying on EADDRINUSE),
// and a watchdog ([Options.Timeout]) that closes everything the subtest
// opened and fails it if it hangs. With [Options.TLS] the suite generates a
// self-signed certificate for 127.0.0.1 and passes EndpointConfig.TLS and
// DialConfig.TLS; the client config has no ServerName, so a transport sets
// it from DialConfig.Addr's host when empty, as tls.Dial does.
//
// Below, "connector side" is a stream from [sdk.Endpoint.Open] or
// [sdk.Endpoint.Accept], "agent side" the same stream from
// [sdk.Session.Accept] or [sdk.Session.Open].
//
// # What the suite checks
//
//   - Config: Name matches [sdk.ValidName]; Listen and Dial refuse invalid
//     configs with [sdk.ErrInvalidConfig]; Listen on a taken address fails
//     with an error wrapping syscall.EADDRINUSE.
//   - BasicIO: Endpoint.Open pairs with Session.Accept; bytes cross both
//     ways; the agent may speak first on a fresh stream (server-speaks-first
//     protocols); streams are used once and new ones keep coming; streams
//     report their addresses.
//   - PingPong: 300 small request/response round trips on one stream.
//   - BadPasscode: an agent with a wrong passcode gets [sdk.ErrBadPasscode]
//     from Dial or from its first Accept or Open, and the endpoint hands it
//     no stream; the right passcode is then accepted.
//   - LinkLimit: with MaxLinks 1 a second agent gets [sdk.ErrLinkLimit] from
//     Dial or its first Accept, the first agent's stream is unharmed, and
//     once the first agent closes its session a new agent is admitted.
//   - StreamLimit: what the core's enforcement of a mapping's
//     maxconnections needs from a transport (the core sets MaxLinks to it
//     and holds at most that many streams): with MaxLinks 3, one agent
//     carries 3 streams at once; closing them on the connector side alone
//     ends the agent's side, and 3 more can be opened (retried for 15s
//     while the endpoint notices), three rounds in a row.
//   - LargeTransfer: 8 MiB each way at once on one stream, checksummed.
//   - ConcurrentStreams: [Options.Streams] streams opened at once, each
//     carrying [Options.StreamBytes] each way at once, SHA-256 checked (8 MiB
//     in all by default). Each stream starts with its index, so a byte of one
//     stream reaching another fails the test.
//   - Isolation: a stream opened on one endpoint never reaches the agent of
//     another; closing a stream, from either end, leaves its siblings on the
//     same session working.
//   - PrivateMode: with [sdk.ModePrivate], streams the agent opens with
//     Session.Open arrive at Endpoint.Accept (the agent speaks first), four
//     at once are byte-exact, and Endpoint.Open still works.
//   - HalfClose: streams implement [sdk.CloseWriter]; after CloseWrite on
//     either end the peer reads every byte then io.EOF, the reverse
//     direction still carries data, and the peer's CloseWrite then reaches
//     the first end.
//   - CloseUnblocks: closing a stream at either end ends the peer's Read; a
//     stream's Close unblocks its own Read; Endpoint.Close unblocks pending
//     Open and Accept with an error satisfying errors.Is(err, net.ErrClosed)
//     and makes the agent's pending Session.Accept fail; later Open and
//     Accept return net.ErrClosed; Close is idempotent; Session.Close
//     unblocks its pending Accept and later calls fail; once the only agent
//     has closed its session, Endpoint.Open returns no live stream.
//   - StreamsOutliveClose: streams already handed out, either way, keep
//     working after both Endpoint.Close and Session.Close.
//   - ContextCancel: cancelling ctx unblocks Endpoint.Open (no agent),
//     Endpoint.Accept and Session.Accept, which return ctx.Err(); an
//     expired deadline gives context.DeadlineExceeded; against a connector
//     that accepts and never answers (a black hole), Dial, or if Dial is
//     lazy the session's Accept and Open, return once ctx is cancelled.
//   - HeartbeatAbsence: the agent reaches the endpoint through a proxy run
//     by the suite ([Options.Network] says whether it forwards TCP or UDP).
//     With both thresholds set to [Options.HeartbeatThreshold] and the agent
//     beating at a fifth of it, a stream left idle for twice the threshold
//     still works (heartbeats keep idle links alive, including links that
//     carry a stream). Then the proxy freezes: it keeps every connection
//     open but forwards nothing either way, which is how a hung agent or a
//     black-holed network looks. Both ends must then drop the link, so each
//     side's stream Read ends, within the threshold plus 5s, and if the
//     endpoint implements [sdk.StatsReporter] its Links count returns to 0.
//     This is checkable without knowing the wire format, which is why the
//     suite freezes the path rather than the agent.
//   - AgentFrozen: the endpoint has [Options.HeartbeatThreshold] and the
//     agent's DialConfig sets no heartbeat timings, so the transport must
//     tell the agent the endpoint's threshold (the agent's own default is
//     60 s). A stream idle for three thresholds still works and, with
//     [sdk.StatsReporter], Links stays 1 at every sample (a live agent is
//     never dropped). Then the proxy stalls: it stops reading in both
//     directions and keeps every connection open, as an agent stopped with
//     SIGSTOP does (its kernel still acknowledges until the buffers fill).
//     The connector's streams, one idle and one the connector keeps
//     writing into, must end within the threshold plus 5s, Links return to
//     0, and the agent's stream end too. Skipped when HeartbeatAbsence is.
//   - NetConn: streams pass nettest.TestConn (deadlines, racy reads and
//     writes, Close unblocking, concurrent methods). *tls.Conn cannot pass
//     PastTimeout, so TLS-wrapped streams skip it with that reason.
//   - Origin (with [Options.Origins] only): the origin given to
//     Endpoint.Open with [sdk.WithOrigin] (an IPv4 client on an IPv6 local
//     address, then IPv6 both) arrives exactly on the agent's stream from
//     Session.Accept, through [sdk.OriginStream]; a stream opened without
//     one reports none; the streams carry their bytes intact (no header
//     leaks into the data) and still half-close.
//   - LogAttrsOnce: with an endpoint logger that already carries the
//     mapping, side and transport (as core passes it) and a session logger
//     that carries the transport and peer (as sdk/agent passes it), no line
//     logged while a stream runs and a bad passcode is refused names an
//     attribute twice.
//   - NoLeaks: after a warm-up life (listen, dial, streams both ways, a
//     refused agent, a cancelled Open, close everything), a second such life
//     leaves no more goroutines and no more open file descriptors than
//     before it, within 10s of everything being closed.
//
// A subtest a transport cannot pass yet is listed in [Options.Skip] with a
// reason (an issue link); it is then reported as skipped, never as passed.
// Like nettest, the suite can miss races: run it under the race detector.
//
// # The real agent
//
// Outside the suite, three checks run the agent (package sdk/agent)
// against the transport's own endpoints, so that a transport shows the
// agent works over it:
//
//   - [AgentPublic]: agent.RunPublic started before the endpoint listens
//     connects once it does, relays to its local service, reconnects after
//     the endpoint is replaced, and returns nil once cancelled.
//   - [AgentPrivate]: agent.RunPrivate's listening side carries each local
//     connection to Endpoint.Accept of a private endpoint, both ways.
//   - [AgentProxyHeader] (transports that carry origins): the agent writes
//     the PROXY protocol header of a stream's origin, exactly, before the
//     client's bytes, and none for a stream without an origin.
//
// A transport's tests call the ones that apply:
//
//	func TestAgent(t *testing.T) {
//		opts := transporttest.Options{}
//		t.Run("Public", func(t *testing.T) { transporttest.AgentPublic(t, mytransport.New(), opts) })
//		t.Run("Private", func(t *testing.T) { transporttest.AgentPrivate(t, mytransport.New(), opts) })
//		t.Run("ProxyHeader", func(t *testing.T) { transporttest.AgentProxyHeader(t, mytransport.New(), opts) })
//	}
//
// They read Network, TLS, Timeout and Logger from [Options].
// [EchoService] is the local service they expose, for a transport's own
// agent tests.
//
// This package is part of the stable contract of the sdk (see "Stability"
// in package sdk): its functions, types and [Options] change only in a
// backwards-compatible way, and make api-check enforces it. What it checks
// grows with the contract: a later release may add a subtest that a
// transport then has to pass (or list in [Options.Skip]).
package transporttest
