// Package plugin serves an [sdk.Transport] from a separate executable and
// lets the connector and its agent use it as if it were built in. It is the
// shared half of a hashicorp/go-plugin pair: [Handshake], [PluginMap],
// [TransportPlugin] and both gRPC adapters live here, so a third-party
// plugin's main is one line:
//
//	func main() { plugin.Serve(mytransport.New()) }
//
// # How the halves talk
//
// The transport runs in the plugin process: its endpoints own the agent
// ports, its sessions own the agent's connections. Calls (Listen, Dial,
// Open, Accept, Close, Stats) travel over go-plugin's gRPC connection, and
// context cancellation travels with them. Byte streams do not: a call that
// yields a stream parks it in the plugin under a random 128-bit ticket, and
// the host claims it by connecting to the plugin's private unix socket (in
// a 0700 temporary directory) and presenting the ticket. The plugin then
// joins the transport's stream to that unix connection with sdk/pipe, half-
// close included, and the host gets a bare *net.UnixConn, which the relay
// can splice. A stream not claimed within 15s is closed.
//
// This was chosen over carrying bytes in a bidirectional gRPC stream
// adapted to net.Conn (go-plugin's broker hands out *grpc.ClientConn, not
// net.Conn): the unix socket keeps deadlines and half-close native, passes
// nettest.TestConn unchanged, lets the host's relay splice, and is several
// times faster. BenchmarkBoundary measures both mechanisms on one machine
// (64 KiB writes, one way; 2 shared cores under load): a unix connection
// moved 660-1030 MB/s, a gRPC stream with a raw-bytes codec 27-150 MB/s.
// BenchmarkStream measures the whole adapter against the same transport in
// process.
//
// # Liveness across the boundary
//
// The host keeps one Watch stream open to its plugin (see [Remote]). It
// beats on it every 250 ms: a plugin whose host stops beating (a host
// process stopped with SIGSTOP or hung, while its plugin child runs on and
// would keep the agent's links beating) ends the agent sessions it holds
// for that host, and aborts their streams ([Aborter]), after half the
// smallest heartbeat threshold of those sessions (the one their connector
// told them, see [ThresholdReporter]), at least 2 s and at most 30 s; the
// connectors then see the agent gone. The plugin sends back, on the same
// stream, the ticket of every stream that broke (its transport stream
// failed, or was aborted): the host closes its end of that stream's unix
// connection itself, so that the relay using it ends both of its sides
// instead of reading a mere EOF and half-closing its client. The plugin
// keeps a broken stream's unix connection open for up to 10 s for this. A
// plugin or host of an earlier release does neither, and both work with
// it as before.
//
// A stream's origin ([sdk.Origin], the public client's address a mapping
// with a PROXY protocol version hands to Endpoint.Open) crosses too: the
// host sends it with EndpointOpen, the plugin passes it to its endpoint
// ([sdk.WithOrigin]), and a stream the plugin's session accepts with an
// origin ([sdk.OriginStream]) reaches the host's Session.Accept with it.
// A malformed origin from the plugin drops that stream. A plugin of an
// earlier release ignores the origin it is sent and sends none: its
// streams work as before, and the agent writes no PROXY header.
//
// # Capabilities
//
// The plugin reports its transport's [sdk.Capabilities] ([sdk.CapabilitiesOf]:
// multiplexed, half-close, origins) in its Info answer, and [Remote]
// reports them again ([Remote.Multiplexed], [Remote.Capabilities]), so an
// agent keeps one session to a multiplexing plugin, as to a built-in
// multiplexing transport, rather than a pool of links. A plugin of an
// earlier release reports none ([Info].CapabilitiesReported is false) and
// is treated as before. Endpoint stats cross with their split of failures
// by reason (at most 16 reasons).
//
// # Settings
//
// An operator configures a plugin's transport like a built-in one: the
// subtree transports.<name> of the connector's (or agent's) settings file,
// and environment variables IOFOG_CONNECTOR_TRANSPORTS_<NAME>_<KEY>, which
// win key by key (core/settings). The host sends them once, as a JSON
// object of at most [MaxSettingsSize] bytes, in a Configure call right
// after Info, before any Listen or Dial, each time the plugin process
// starts. A transport that implements [Configurable] gets them as
// [Settings] and decodes them into its own Config struct with
// [Settings.Decode], which refuses unknown keys; its error stops the
// host's start with a message naming the plugin and the key. No settings
// send nothing, so a plugin of an earlier release runs as before; given
// settings, it (or a transport that is not Configurable) is refused with
// the first key named, never left silently unconfigured.
//
// # Stream ends
//
// The host's endpoint of a plugin is an [sdk.StreamObserver]: when the
// core is done with a stream it handed out, the host sends that stream's
// ticket on the Watch stream (with the next beat, at once), and the plugin
// tells its own endpoint, if that is an sdk.StreamObserver, with the very
// net.Conn the endpoint returned. Streams that never reached the host's
// core (unclaimed, or dropped as they were handed over) are reported by
// the plugin itself, and so are all streams, as they end in the plugin,
// when the host is of an earlier release. A plugin of an earlier release
// ignores the tickets.
//
// # Profiling and memory
//
// A plugin process serves Go's profiling endpoints on the loopback
// address [PprofEnv] names (it inherits the variable from its host). Once
// it goes quiet after a burst of traffic, it returns the memory the burst
// left to the kernel at once rather than over minutes.
//
// # Versions and errors
//
// The handshake's ProtocolVersion is [sdk.ProtocolVersion]; a host refuses
// a plugin built against another version (go-plugin's "Incompatible API
// version" and our [sdk.ErrIncompatible]). The sentinel errors of package
// sdk, context errors and syscall.EADDRINUSE cross the boundary so that
// errors.Is works on the host side; a call that fails because the plugin
// process is gone returns an error wrapping [sdk.ErrTransportUnavailable].
//
// # Limits
//
// EndpointConfig.TLS crosses as its first certificate and key (a
// GetCertificate callback cannot cross and is refused with
// [sdk.ErrInvalidConfig]). Of DialConfig.TLS, ServerName,
// InsecureSkipVerify and a client certificate cross; RootCAs cannot be read
// back out of an x509.CertPool, so the plugin's TLS client calls back to
// the host (a Verifier service on go-plugin's broker) to verify each chain
// against RootCAs and the server name, as crypto/tls would. Other
// verification callbacks of DialConfig.TLS are not honoured.
// Loggers stay in the host: the plugin logs JSON lines to its stderr, which
// the host (package plugins) re-logs under the plugin's name. Streams seen
// by the host report the unix socket's addresses, not the agent's.
//
// This package is part of the stable contract of the sdk (see "Stability"
// in package sdk): its exported names change only in a
// backwards-compatible way, and make api-check enforces it.
package plugin
