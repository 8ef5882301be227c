package plugin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// server is the plugin-side gRPC adapter: it forwards calls to Impl and
// hands the streams it gets to the hub.
type server struct {
	pb.UnimplementedTransportServer
	impl   sdk.Transport
	hub    *hub
	broker *goplugin.GRPCBroker // nil in tests without one
	log    *slog.Logger         // the plugin process's stderr

	mu         sync.Mutex
	next       uint64
	endpoints  map[uint64]sdk.Endpoint
	sessions   map[uint64]*servedSession
	verifiers  map[uint32]*grpc.ClientConn // the host's Verifier, by broker id
	configured bool                        // Configure ran

	obs observed // endpoint streams to tell their endpoint about (sdk.StreamObserver)
}

// servedSession is an agent session the plugin holds for its host.
type servedSession struct {
	sdk.Session
	// threshold is DialConfig.HeartbeatThreshold, or the default.
	threshold time.Duration
}

func newServer(impl sdk.Transport, broker *goplugin.GRPCBroker, log *slog.Logger, onHubFail func(error)) (*server, error) {
	if impl == nil {
		return nil, errors.New("plugin: Serve: nil transport")
	}
	if !sdk.ValidName(impl.Name()) {
		return nil, fmt.Errorf("plugin: transport name %q: %w", impl.Name(), sdk.ErrInvalidConfig)
	}
	h, err := newHub(log, onHubFail)
	if err != nil {
		return nil, err
	}
	s := &server{
		impl: impl, hub: h, broker: broker, log: log,
		endpoints: map[uint64]sdk.Endpoint{},
		sessions:  map[uint64]*servedSession{},
		verifiers: map[uint32]*grpc.ClientConn{},
	}
	h.onEnd = s.obs.ended
	return s, nil
}

func (s *server) Info(context.Context, *pb.Empty) (*pb.InfoResponse, error) {
	c := sdk.CapabilitiesOf(s.impl)
	return &pb.InfoResponse{
		Name:            s.impl.Name(),
		SdkVersion:      sdk.Version,
		ProtocolVersion: sdk.ProtocolVersion,
		StreamSocket:    s.hub.path,
		Capabilities:    &pb.Capabilities{Multiplexed: c.Multiplexed, HalfClose: c.HalfClose, Origins: c.Origins},
	}, nil
}

// Configure hands the host's settings to the transport, once, before any
// other call (see [Configurable]).
func (s *server) Configure(ctx context.Context, r *pb.ConfigureRequest) (*pb.ErrorResponse, error) {
	s.mu.Lock()
	again := s.configured
	s.configured = true
	s.mu.Unlock()
	if again {
		return &pb.ErrorResponse{Error: toPB(fmt.Errorf("plugin: %s was configured already: %w", s.impl.Name(), sdk.ErrInvalidConfig))}, nil
	}
	return &pb.ErrorResponse{Error: toPB(configure(ctx, s.impl, r.GetSettingsJson()))}, nil
}

func (s *server) Listen(ctx context.Context, r *pb.ListenRequest) (*pb.HandleResponse, error) {
	cfg := sdk.EndpointConfig{
		MappingID:          r.MappingId,
		Side:               int(r.Side),
		Mode:               sdk.Mode(r.Mode),
		Addr:               r.Addr,
		Passcode:           r.Passcode,
		MaxLinks:           int(r.MaxLinks),
		HeartbeatThreshold: time.Duration(r.HeartbeatThresholdNs),
		Logger:             s.log.With(sdk.AttrMappingID, r.MappingId, sdk.AttrSide, r.Side),
	}
	if r.Tls != nil {
		cert, err := fromIdentity(r.Tls)
		if err != nil {
			return &pb.HandleResponse{Error: toPB(err)}, nil
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ep, err := s.impl.Listen(ctx, cfg)
	if err != nil {
		return &pb.HandleResponse{Error: toPB(err)}, nil
	}
	s.mu.Lock()
	s.next++
	id := s.next
	s.endpoints[id] = ep
	s.mu.Unlock()
	return &pb.HandleResponse{Id: id}, nil
}

func (s *server) Dial(ctx context.Context, r *pb.DialRequest) (*pb.HandleResponse, error) {
	cfg := sdk.DialConfig{
		Addr:               r.Addr,
		Passcode:           r.Passcode,
		HeartbeatInterval:  time.Duration(r.HeartbeatIntervalNs),
		HeartbeatThreshold: time.Duration(r.HeartbeatThresholdNs),
		Logger:             s.log,
	}
	if r.Tls {
		cfg.TLS = &tls.Config{
			ServerName:         r.ServerName,
			InsecureSkipVerify: r.InsecureSkipVerify,
			MinVersion:         tls.VersionTLS12,
		}
		if r.ClientIdentity != nil {
			cert, err := fromIdentity(r.ClientIdentity)
			if err != nil {
				return &pb.HandleResponse{Error: toPB(err)}, nil
			}
			cfg.TLS.Certificates = []tls.Certificate{cert}
		}
		if r.VerifierBrokerId != 0 {
			conn, err := s.verifierConn(r.VerifierBrokerId)
			if err != nil {
				return &pb.HandleResponse{Error: toPB(err)}, nil
			}
			cfg.TLS.InsecureSkipVerify = true // the host verifies, in VerifyConnection
			cfg.TLS.VerifyConnection = remoteVerify(conn, r.VerifierToken)
		}
	}
	sess, err := s.impl.Dial(ctx, cfg)
	if err != nil {
		return &pb.HandleResponse{Error: toPB(err)}, nil
	}
	th := cfg.HeartbeatThreshold
	if th <= 0 {
		th = sdk.DefaultHeartbeatThreshold
	}
	s.mu.Lock()
	s.next++
	id := s.next
	s.sessions[id] = &servedSession{Session: sess, threshold: th}
	s.mu.Unlock()
	return &pb.HandleResponse{Id: id}, nil
}

// verifierConn returns a connection to the host's Verifier.
func (s *server) verifierConn(id uint32) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.verifiers[id]; c != nil {
		return c, nil
	}
	if s.broker == nil {
		return nil, fmt.Errorf("plugin: no broker to reach the host's certificate verifier: %w", sdk.ErrInvalidConfig)
	}
	c, err := s.broker.Dial(id)
	if err != nil {
		return nil, fmt.Errorf("plugin: reaching the host's certificate verifier: %w", err)
	}
	s.verifiers[id] = c
	return c, nil
}

func (s *server) endpoint(h *pb.Handle) sdk.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpoints[h.GetId()]
}

func (s *server) session(h *pb.Handle) sdk.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[h.GetId()]; ss != nil {
		return ss
	}
	return nil
}

// stream runs a call that yields a stream and parks the stream in the hub
// under owner (the session's handle, or 0 for an endpoint). obs, when not
// nil, is the endpoint that yielded it and wants to learn its end.
func (s *server) stream(ctx context.Context, ok bool, owner uint64, obs sdk.StreamObserver, f func(context.Context) (net.Conn, error)) (*pb.StreamResponse, error) {
	if !ok {
		return &pb.StreamResponse{Error: toPB(fmt.Errorf("plugin: unknown handle: %w", sdk.ErrClosed))}, nil
	}
	conn, err := f(ctx)
	if err != nil {
		return &pb.StreamResponse{Error: toPB(err)}, nil
	}
	given := conn // the value the endpoint returned, for StreamClosed
	dropped := func() {
		conn.Close()
		if obs != nil {
			obs.StreamClosed(given)
		}
	}
	if ctx.Err() != nil { // the host gave up as the stream arrived
		dropped()
		return &pb.StreamResponse{Error: toPB(ctx.Err())}, nil
	}
	conn, origin := streamOrigin(conn)
	var register func(ticket)
	if obs != nil {
		register = func(t ticket) { s.obs.add(t, obs, given) }
	}
	t, err := s.hub.put(conn, owner, register)
	if err != nil {
		dropped()
		return &pb.StreamResponse{Error: toPB(err)}, nil
	}
	resp := &pb.StreamResponse{Ticket: t[:], Origin: origin}
	if a := conn.LocalAddr(); a != nil {
		resp.LocalAddr = a.String()
	}
	if a := conn.RemoteAddr(); a != nil {
		resp.RemoteAddr = a.String()
	}
	return resp, nil
}

func (s *server) EndpointOpen(ctx context.Context, r *pb.OpenRequest) (*pb.StreamResponse, error) {
	ep := s.endpoint(&pb.Handle{Id: r.GetId()})
	o, ok, err := fromPBOrigin(r.GetOrigin())
	if err != nil {
		return &pb.StreamResponse{Error: toPB(fmt.Errorf("%w: %w", sdk.ErrInvalidConfig, err))}, nil
	}
	return s.stream(ctx, ep != nil, 0, observer(ep), func(ctx context.Context) (net.Conn, error) {
		if ok {
			ctx = sdk.WithOrigin(ctx, o)
		}
		return ep.Open(ctx)
	})
}

// observer returns ep as an sdk.StreamObserver, or nil.
func observer(ep sdk.Endpoint) sdk.StreamObserver {
	o, _ := ep.(sdk.StreamObserver)
	return o
}

func (s *server) EndpointAccept(ctx context.Context, h *pb.Handle) (*pb.StreamResponse, error) {
	ep := s.endpoint(h)
	return s.stream(ctx, ep != nil, 0, observer(ep), func(ctx context.Context) (net.Conn, error) { return ep.Accept(ctx) })
}

func (s *server) SessionAccept(ctx context.Context, h *pb.Handle) (*pb.StreamResponse, error) {
	ss := s.session(h)
	return s.stream(ctx, ss != nil, h.GetId(), nil, func(ctx context.Context) (net.Conn, error) { return ss.Accept(ctx) })
}

func (s *server) SessionOpen(ctx context.Context, h *pb.Handle) (*pb.StreamResponse, error) {
	ss := s.session(h)
	return s.stream(ctx, ss != nil, h.GetId(), nil, func(ctx context.Context) (net.Conn, error) { return ss.Open(ctx) })
}

func (s *server) EndpointClose(_ context.Context, h *pb.Handle) (*pb.ErrorResponse, error) {
	s.mu.Lock()
	ep := s.endpoints[h.GetId()]
	delete(s.endpoints, h.GetId())
	s.mu.Unlock()
	if ep == nil {
		return &pb.ErrorResponse{}, nil // idempotent
	}
	return &pb.ErrorResponse{Error: toPB(ep.Close())}, nil
}

func (s *server) SessionClose(_ context.Context, h *pb.Handle) (*pb.ErrorResponse, error) {
	s.mu.Lock()
	ss := s.sessions[h.GetId()]
	delete(s.sessions, h.GetId())
	s.mu.Unlock()
	if ss == nil {
		return &pb.ErrorResponse{}, nil
	}
	return &pb.ErrorResponse{Error: toPB(ss.Close())}, nil
}

func (s *server) EndpointStats(_ context.Context, h *pb.Handle) (*pb.StatsResponse, error) {
	sr, ok := s.endpoint(h).(sdk.StatsReporter)
	if !ok {
		return &pb.StatsResponse{}, nil
	}
	st := sr.Stats()
	return &pb.StatsResponse{
		Supported: true, Links: int64(st.Links), IdleLinks: int64(st.IdleLinks), Streams: int64(st.Streams),
		Failed: st.Failed, FailedByReason: st.FailedByReason,
	}, nil
}

// EndpointWait blocks until the endpoint stops ([sdk.Stopper]) and returns
// why: no error after EndpointClose, the cause when it stopped on its own.
// An endpoint that cannot tell answers Unimplemented.
func (s *server) EndpointWait(ctx context.Context, h *pb.Handle) (*pb.ErrorResponse, error) {
	ep := s.endpoint(h)
	if ep == nil {
		return &pb.ErrorResponse{}, nil // closed already
	}
	st, ok := ep.(sdk.Stopper)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "plugin: this transport's endpoints cannot report that they stopped")
	}
	select {
	case <-st.Done():
		return &pb.ErrorResponse{Error: toPB(st.Err())}, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// identity encodes a TLS certificate for the wire. Only keys that
// x509.MarshalPKCS8PrivateKey supports cross.
func identity(c tls.Certificate) (*pb.TLSIdentity, error) {
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("plugin: TLS key: %w: %v", sdk.ErrInvalidConfig, err)
	}
	return &pb.TLSIdentity{CertificateDer: c.Certificate, PrivateKeyPkcs8: key}, nil
}

func fromIdentity(id *pb.TLSIdentity) (tls.Certificate, error) {
	key, err := x509.ParsePKCS8PrivateKey(id.PrivateKeyPkcs8)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("plugin: TLS key: %w: %v", sdk.ErrInvalidConfig, err)
	}
	return tls.Certificate{Certificate: id.CertificateDer, PrivateKey: key}, nil
}
