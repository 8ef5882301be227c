package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// Info describes a plugin transport, as the plugin reports it.
type Info struct {
	// Name is the transport's registry name.
	Name string
	// SDKVersion is the sdk.Version the plugin was built with.
	SDKVersion string
	// ProtocolVersion is the sdk.ProtocolVersion the plugin speaks.
	ProtocolVersion int
	// Capabilities are what the plugin's transport reports
	// ([sdk.CapabilitiesOf]); none from a plugin of an earlier release.
	Capabilities sdk.Capabilities
	// CapabilitiesReported is false for a plugin of an earlier release,
	// which reports no capabilities: Capabilities is then all false,
	// whatever the transport can do.
	CapabilitiesReported bool
}

// infoFromPB reads the plugin's Info answer.
func infoFromPB(resp *pb.InfoResponse) Info {
	info := Info{
		Name:            resp.GetName(),
		SDKVersion:      resp.GetSdkVersion(),
		ProtocolVersion: int(resp.GetProtocolVersion()),
	}
	if c := resp.GetCapabilities(); c != nil {
		info.CapabilitiesReported = true
		info.Capabilities = sdk.Capabilities{Multiplexed: c.GetMultiplexed(), HalfClose: c.GetHalfClose(), Origins: c.GetOrigins()}
	}
	return info
}

// Remote is the host-side [sdk.Transport] of one running plugin process.
// Calls travel over gRPC; each stream's bytes travel over a unix socket
// connection of its own, returned as a bare *net.UnixConn (so the relay's
// splice applies; its addresses are the socket's, not the agent's).
//
// When the plugin process dies, every call returns an error wrapping
// [sdk.ErrTransportUnavailable] and streams already handed out are closed.
// A Remote does not restart anything: package plugins does.
//
// A Remote beats to its plugin every 250 ms, so that a plugin whose host
// froze ends the agent sessions it holds for it (see [Serve]), and closes
// a stream's unix connection as soon as the plugin reports that the
// stream ended abnormally (its agent or connector was lost), so that the
// relay using it ends both of its sides at once rather than reading a
// mere EOF.
type Remote struct {
	c      pb.TransportClient
	info   Info
	socket string
	verify *verifier // nil without a broker: then RootCAs cannot be used
	watch  *watcher
}

func newRemote(ctx context.Context, c pb.TransportClient, broker *goplugin.GRPCBroker) (*Remote, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.Info(ctx, &pb.Empty{})
	if err != nil {
		return nil, callError(ctx, "info", err)
	}
	r := &Remote{c: c, socket: resp.StreamSocket, info: infoFromPB(resp)}
	if broker != nil {
		r.verify = &verifier{broker: broker}
	}
	if r.info.ProtocolVersion != sdk.ProtocolVersion {
		return nil, fmt.Errorf("plugin: transport %q speaks protocol %d (sdk %s), this host speaks %d (sdk %s): %w",
			r.info.Name, r.info.ProtocolVersion, r.info.SDKVersion, sdk.ProtocolVersion, sdk.Version, sdk.ErrIncompatible)
	}
	if !sdk.ValidName(r.info.Name) {
		return nil, fmt.Errorf("plugin: transport name %q: %w", r.info.Name, sdk.ErrInvalidConfig)
	}
	r.watch = newWatcher()
	go r.watch.run(c)
	return r, nil
}

// Name returns the name the plugin reported.
func (r *Remote) Name() string { return r.info.Name }

// Info returns what the plugin reported about itself.
func (r *Remote) Info() Info { return r.info }

// Multiplexed implements [sdk.Multiplexer] with what the plugin
// reported: an agent then keeps one session to a multiplexing plugin
// instead of a pool of links. False for a plugin of an earlier release.
func (r *Remote) Multiplexed() bool { return r.info.Capabilities.Multiplexed }

// Capabilities implements [sdk.CapabilityReporter] with what the plugin
// reported (none for a plugin of an earlier release).
func (r *Remote) Capabilities() sdk.Capabilities { return r.info.Capabilities }

// StreamSocket returns the path of the plugin's stream socket; its
// directory is the plugin's to remove, or the host's once the plugin died.
func (r *Remote) StreamSocket() string { return r.socket }

// Configure hands the plugin its settings (the transports.<name> subtree
// the operator wrote, keys to JSON values), once, before any Listen or
// Dial. No settings send nothing, so that a plugin of an earlier release
// runs as before; given some, such a plugin, or one whose transport is
// not [Configurable], is refused with an error naming the first key. The
// JSON of settings must fit in [MaxSettingsSize]. An error the plugin's
// transport returns names the key it refused.
func (r *Remote) Configure(ctx context.Context, settings map[string]any) error {
	if len(settings) == 0 {
		return nil
	}
	first := slices.Sorted(maps.Keys(settings))[0]
	b, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("transports.%s: settings: %w: %v", r.info.Name, sdk.ErrInvalidConfig, err)
	}
	if len(b) > MaxSettingsSize {
		return fmt.Errorf("transports.%s: %d bytes of settings, more than the %d allowed: %w", r.info.Name, len(b), MaxSettingsSize, sdk.ErrInvalidConfig)
	}
	resp, err := r.c.Configure(ctx, &pb.ConfigureRequest{SettingsJson: b})
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("transports.%s.%s: the %s plugin (sdk %s) predates plugin settings and takes none: %w",
			r.info.Name, first, r.info.Name, r.info.SDKVersion, sdk.ErrInvalidConfig)
	}
	if err != nil {
		return callError(ctx, "configure", err)
	}
	if err := fromPB(resp.Error); err != nil {
		return err
	}
	return nil
}

// Listen starts an endpoint in the plugin process. cfg.TLS crosses as its
// first certificate (and key); cfg.Logger stays in the host, the plugin
// logs to its stderr, which the host collects.
func (r *Remote) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	req := &pb.ListenRequest{
		MappingId:            cfg.MappingID,
		Side:                 int32(cfg.Side),
		Mode:                 string(cfg.Mode),
		Addr:                 cfg.Addr,
		Passcode:             cfg.Passcode,
		MaxLinks:             int32(cfg.MaxLinks),
		HeartbeatThresholdNs: int64(cfg.HeartbeatThreshold),
	}
	if cfg.TLS != nil {
		if len(cfg.TLS.Certificates) == 0 {
			return nil, fmt.Errorf("plugin: EndpointConfig.TLS has no Certificates (a GetCertificate callback cannot cross to the plugin): %w", sdk.ErrInvalidConfig)
		}
		id, err := identity(cfg.TLS.Certificates[0])
		if err != nil {
			return nil, err
		}
		req.Tls = id
	}
	resp, err := r.c.Listen(ctx, req)
	if err != nil {
		return nil, callError(ctx, "listen", err)
	}
	if err := fromPB(resp.Error); err != nil {
		return nil, err
	}
	return newRemoteEndpoint(r, &pb.Handle{Id: resp.Id}), nil
}

// Dial starts a session in the plugin process. Of cfg.TLS, ServerName,
// InsecureSkipVerify and the first client certificate cross; a cert pool
// cannot be sent, so when cfg.TLS has RootCAs the plugin asks this host to
// verify each chain the connector presents (over go-plugin's broker),
// against RootCAs and the server name. Without RootCAs the plugin verifies
// against the system roots.
func (r *Remote) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	req := &pb.DialRequest{
		Addr:                 cfg.Addr,
		Passcode:             cfg.Passcode,
		HeartbeatIntervalNs:  int64(cfg.HeartbeatInterval),
		HeartbeatThresholdNs: int64(cfg.HeartbeatThreshold),
	}
	var token uint64
	if t := cfg.TLS; t != nil {
		req.Tls, req.ServerName, req.InsecureSkipVerify = true, t.ServerName, t.InsecureSkipVerify
		if req.ServerName == "" {
			req.ServerName, _, _ = net.SplitHostPort(cfg.Addr)
		}
		if len(t.Certificates) > 0 {
			id, err := identity(t.Certificates[0])
			if err != nil {
				return nil, err
			}
			req.ClientIdentity = id
		}
		if t.RootCAs != nil && !t.InsecureSkipVerify {
			if r.verify == nil {
				return nil, fmt.Errorf("plugin: DialConfig.TLS.RootCAs needs a go-plugin broker to verify for the plugin: %w", sdk.ErrInvalidConfig)
			}
			req.VerifierBrokerId = r.verify.start()
			token = r.verify.add(t.Clone(), req.ServerName)
			req.VerifierToken = token
		}
	}
	forget := func() {
		if token != 0 {
			r.verify.remove(token)
		}
	}
	resp, err := r.c.Dial(ctx, req)
	if err != nil {
		forget()
		return nil, callError(ctx, "dial", err)
	}
	if err := fromPB(resp.Error); err != nil {
		forget()
		return nil, err
	}
	return &remoteSession{r: r, h: &pb.Handle{Id: resp.Id}, closed: make(chan struct{}), forget: forget}, nil
}

type streamCall func(context.Context, *pb.Handle, ...grpc.CallOption) (*pb.StreamResponse, error)

// stream makes a stream-yielding call and claims the stream it yields.
func (r *Remote) stream(ctx context.Context, op string, closed <-chan struct{}, call streamCall, h *pb.Handle) (net.Conn, error) {
	c, _, err := r.streamTicket(ctx, op, closed, call, h)
	return c, err
}

// streamTicket is stream, which also returns the stream's ticket.
func (r *Remote) streamTicket(ctx context.Context, op string, closed <-chan struct{}, call streamCall, h *pb.Handle) (net.Conn, ticket, error) {
	var none ticket
	select {
	case <-closed:
		return nil, none, sdk.ErrClosed
	default:
	}
	resp, err := call(ctx, h)
	if err != nil {
		return nil, none, callError(ctx, op, err)
	}
	if err := fromPB(resp.Error); err != nil {
		return nil, none, err
	}
	if len(resp.Ticket) != ticketLen {
		return nil, none, fmt.Errorf("plugin: %s: bad ticket length %d", op, len(resp.Ticket))
	}
	t := ticket(resp.Ticket)
	r.watch.expect(t)
	conn, err := claim(ctx, r.socket, resp.Ticket)
	if err != nil {
		r.watch.forget(t)
		if ctx.Err() != nil {
			return nil, none, ctx.Err()
		}
		return nil, none, fmt.Errorf("plugin: %s: claiming the stream: %w: %v", op, sdk.ErrTransportUnavailable, err)
	}
	if !r.watch.claimed(t, conn) {
		conn.Close()
		r.watch.streamClosed(t) // no core will: the plugin's endpoint learns it now
		return nil, none, fmt.Errorf("plugin: %s: the stream broke as it was claimed: %w", op, io.ErrUnexpectedEOF)
	}
	o, ok, err := fromPBOrigin(resp.Origin)
	if err != nil {
		conn.Close()
		r.watch.streamClosed(t)
		return nil, none, fmt.Errorf("plugin: %s: %w", op, err)
	}
	if ok {
		return &originConn{Conn: conn, origin: o}, t, nil
	}
	return conn, t, nil
}

type remoteEndpoint struct {
	r      *Remote
	h      *pb.Handle
	once   sync.Once
	closed chan struct{}
	err    error

	// Stopper: done is closed when the endpoint stopped, learnt by one
	// EndpointWait call started at the first Done.
	waitOnce   sync.Once
	waitCtx    context.Context
	waitCancel context.CancelFunc
	stopOnce   sync.Once
	done       chan struct{}
	stopMu     sync.Mutex
	stopErr    error

	handed handedStreams // streams handed out, for StreamClosed
}

func newRemoteEndpoint(r *Remote, h *pb.Handle) *remoteEndpoint {
	ctx, cancel := context.WithCancel(context.Background())
	return &remoteEndpoint{r: r, h: h, closed: make(chan struct{}), waitCtx: ctx, waitCancel: cancel, done: make(chan struct{})}
}

// Done implements [sdk.Stopper]. It is closed by Close, when the plugin
// reports that the endpoint stopped on its own, and when the plugin
// process is gone (Err then wraps [sdk.ErrTransportUnavailable]). A
// plugin whose endpoints cannot tell leaves it open until Close.
func (e *remoteEndpoint) Done() <-chan struct{} {
	e.waitOnce.Do(func() { go e.wait() })
	return e.done
}

// Err implements [sdk.Stopper].
func (e *remoteEndpoint) Err() error {
	e.stopMu.Lock()
	defer e.stopMu.Unlock()
	return e.stopErr
}

func (e *remoteEndpoint) stop(err error) {
	e.stopOnce.Do(func() {
		e.stopMu.Lock()
		e.stopErr = err
		e.stopMu.Unlock()
		close(e.done)
	})
}

// wait asks the plugin to tell when the endpoint stops.
func (e *remoteEndpoint) wait() {
	resp, err := e.r.c.EndpointWait(e.waitCtx, e.h)
	switch {
	case e.waitCtx.Err() != nil: // closed by us
	case status.Code(err) == codes.Unimplemented: // cannot tell: serves until closed
	case err != nil:
		e.stop(callError(e.waitCtx, "endpoint wait", err))
	default:
		e.stop(fromPB(resp.Error))
	}
}

func (e *remoteEndpoint) Open(ctx context.Context) (net.Conn, error) {
	// The origin rides in the request; a plugin of an earlier release
	// reads it as a Handle and opens the stream without it.
	open := func(ctx context.Context, h *pb.Handle, opts ...grpc.CallOption) (*pb.StreamResponse, error) {
		return e.r.c.EndpointOpen(ctx, &pb.OpenRequest{Id: h.GetId(), Origin: toPBOrigin(sdk.OriginFrom(ctx))}, opts...)
	}
	return e.handOut(e.r.streamTicket(ctx, "endpoint open", e.closed, open, e.h))
}

func (e *remoteEndpoint) Accept(ctx context.Context) (net.Conn, error) {
	return e.handOut(e.r.streamTicket(ctx, "endpoint accept", e.closed, e.r.c.EndpointAccept, e.h))
}

// handOut records the stream c, whose ticket is t, for StreamClosed,
// when the plugin can be told.
func (e *remoteEndpoint) handOut(c net.Conn, t ticket, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	if e.r.watch.reports() {
		e.handed.add(c, t)
	}
	return c, nil
}

// StreamClosed implements [sdk.StreamObserver]: it sends the stream's
// ticket to the plugin (on the Watch stream, without blocking), which
// tells its endpoint if that is an sdk.StreamObserver. Streams it did not
// hand out are ignored; a plugin of an earlier release is not told.
func (e *remoteEndpoint) StreamClosed(c net.Conn) {
	if t, ok := e.handed.take(c); ok {
		e.r.watch.streamClosed(t)
	}
}

// Close closes the endpoint in the plugin, which unblocks pending calls.
func (e *remoteEndpoint) Close() error {
	e.once.Do(func() {
		close(e.closed)
		e.stop(nil)
		e.waitCancel()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := e.r.c.EndpointClose(ctx, e.h)
		if err != nil {
			e.err = callError(ctx, "endpoint close", err)
			return
		}
		e.err = fromPB(resp.Error)
	})
	return e.err
}

// Stats asks the plugin, waiting at most 500ms; an unreachable plugin
// reports zero links.
func (e *remoteEndpoint) Stats() sdk.EndpointStats {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	resp, err := e.r.c.EndpointStats(ctx, e.h)
	if err != nil || !resp.Supported {
		return sdk.EndpointStats{}
	}
	return sdk.EndpointStats{
		Links: int(resp.Links), IdleLinks: int(resp.IdleLinks), Streams: int(resp.Streams),
		Failed: resp.Failed, FailedByReason: failedByReason(resp.FailedByReason),
	}
}

type remoteSession struct {
	forget func() // drops the session's TLS config from the verifier
	r      *Remote
	h      *pb.Handle
	once   sync.Once
	closed chan struct{}
	err    error
}

func (s *remoteSession) Accept(ctx context.Context) (net.Conn, error) {
	return s.r.stream(ctx, "session accept", s.closed, s.r.c.SessionAccept, s.h)
}

func (s *remoteSession) Open(ctx context.Context) (net.Conn, error) {
	return s.r.stream(ctx, "session open", s.closed, s.r.c.SessionOpen, s.h)
}

func (s *remoteSession) Close() error {
	s.once.Do(func() {
		close(s.closed)
		defer s.forget()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := s.r.c.SessionClose(ctx, s.h)
		if err != nil {
			s.err = callError(ctx, "session close", err)
			return
		}
		s.err = fromPB(resp.Error)
	})
	return s.err
}

// failedByReason copies a plugin's split of failures, keeping at most
// 16 reasons of at most 32 bytes (the sdk.Failure* names are short), so
// that a faulty plugin cannot grow the host's status without bound.
func failedByReason(m map[string]int64) map[string]int64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]int64, min(len(m), 16))
	for k, v := range m {
		if len(out) == 16 {
			break
		}
		if len(k) <= 32 && v > 0 {
			out[k] = v
		}
	}
	return out
}

var (
	_ sdk.Transport          = (*Remote)(nil)
	_ sdk.Multiplexer        = (*Remote)(nil)
	_ sdk.CapabilityReporter = (*Remote)(nil)
	_ sdk.Endpoint           = (*remoteEndpoint)(nil)
	_ sdk.StatsReporter      = (*remoteEndpoint)(nil)
	_ sdk.Stopper            = (*remoteEndpoint)(nil)
	_ sdk.StreamObserver     = (*remoteEndpoint)(nil)
	_ sdk.Session            = (*remoteSession)(nil)
)
