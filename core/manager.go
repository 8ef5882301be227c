package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/iofog/iofog-connector/core/passcode"
	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/relay"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

// Store is the part of store.Store the manager needs.
type Store interface {
	Add(ctx context.Context, m store.Mapping) error
	Remove(ctx context.Context, id string) error
}

// Config configures a [Manager].
type Config struct {
	// BindHost is the host the agent and public ports listen on. Empty
	// means every interface.
	BindHost string
	// Ports hands out the ports. Required.
	Ports *ports.Allocator
	// Store keeps mappings durably. Required.
	Store Store
	// Transports are the transports mappings may name. Required: at least
	// the default one.
	Transports map[string]sdk.Transport
	// DefaultTransport is used by mappings that name none. Required.
	DefaultTransport string
	// TLS, when not nil, is the server identity of the agent and public
	// ports. Nil means plain TCP (dev mode).
	TLS *tls.Config
	// PublicWaitTimeout bounds how long a public client waits for an
	// agent link. Zero means relay.DefaultWaitTimeout.
	PublicWaitTimeout time.Duration
	// PublicMaxWaiting and PublicMaxWaitingPerSource cap the public
	// clients of one mapping waiting for an agent link, in all and per
	// source. Zero means relay.DefaultMaxWaiting and
	// relay.DefaultMaxWaitingPerSource.
	PublicMaxWaiting, PublicMaxWaitingPerSource int
	// Logger receives the manager's logs. Nil means discard.
	Logger *slog.Logger
	// RestoreProgressInterval is how often [Manager.Restore] logs how far
	// it got. Zero means every second.
	RestoreProgressInterval time.Duration
	// Now returns the time. Nil means time.Now.
	Now func() time.Time
}

// Manager owns the mappings, their ports, endpoints and relays. It is safe
// for concurrent use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	started time.Time

	mu       sync.RWMutex
	mappings map[string]*live
	pending  map[string]bool // ids being added
	closed   bool
}

// live is a running mapping.
type live struct {
	m        Mapping
	ep1, ep2 sdk.Endpoint // ep2 is nil for a public mapping
	pub      net.Listener // public port of a public mapping
	counters relay.Counters
	// limits count the streams held on port1 and port2 and cap them at
	// MaxConnections1 and MaxConnections2 (port2 of a public mapping is
	// the public port: its clients are counted on port1).
	limits [2]*relay.Limit
	cancel context.CancelFunc
	done   chan struct{}
	down   error // set when the mapping could not be reopened
	// ownsPorts is false for a restored mapping whose ports could not be
	// reserved (another stored mapping holds them): Remove must not
	// release them.
	ownsPorts bool
}

// newLive returns mp, not yet open, with its stream limits.
func newLive(mp Mapping) *live {
	lv := &live{m: mp}
	lv.limits[0] = relay.NewLimit(mp.MaxConnections1)
	if mp.Type == TypePrivate {
		lv.limits[1] = relay.NewLimit(mp.MaxConnections2)
	}
	return lv
}

// New returns a manager. It does not open anything until [Manager.Add] or
// [Manager.Restore].
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Ports == nil:
		return nil, errors.New("core: Config.Ports is nil")
	case cfg.Store == nil:
		return nil, errors.New("core: Config.Store is nil")
	case cfg.Transports[cfg.DefaultTransport] == nil:
		return nil, fmt.Errorf("%w: default transport %q", ErrUnknownTransport, cfg.DefaultTransport)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg:      cfg,
		log:      sdk.Logger(cfg.Logger),
		ctx:      ctx,
		cancel:   cancel,
		started:  cfg.Now(),
		mappings: map[string]*live{},
		pending:  map[string]bool{},
	}, nil
}

// Transports returns the names of the transports mappings may use.
func (m *Manager) Transports() []string {
	names := make([]string, 0, len(m.cfg.Transports))
	for n := range m.cfg.Transports {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Add validates req, opens the mapping on two free ports, stores it durably
// and starts relaying. Errors wrap [ErrInvalid], [ErrUnknownTransport],
// [ErrDuplicate], [ErrNoFreePort] or [ErrClosed].
func (m *Manager) Add(ctx context.Context, req AddRequest) (Mapping, error) {
	if err := validate(&req); err != nil {
		return Mapping{}, err
	}
	if req.Transport == "" {
		req.Transport = m.cfg.DefaultTransport
	}
	tr := m.cfg.Transports[req.Transport]
	if tr == nil {
		return Mapping{}, fmt.Errorf("%w: transport %q (have %s)", ErrUnknownTransport, req.Transport, strings.Join(m.Transports(), ", "))
	}
	if req.ID == "" {
		req.ID = passcode.New()
	}
	if err := m.reserveID(req.ID); err != nil {
		return Mapping{}, err
	}
	defer m.unreserveID(req.ID)
	if m.cfg.Ports.Free() < 2 {
		return Mapping{}, fmt.Errorf("%w: %d free", ErrNoFreePort, m.cfg.Ports.Free())
	}
	mp := Mapping{
		ID: req.ID, Type: req.Type, Transport: req.Transport,
		Passcode1:       passcode.New(),
		MaxConnections1: req.MaxConnections1, Heartbeat1: req.Heartbeat1,
		IdleTimeout: req.IdleTimeout, ProxyProtocol: req.ProxyProtocol,
	}
	if req.Type == TypePrivate {
		mp.Passcode2 = passcode.New()
		mp.MaxConnections2, mp.Heartbeat2 = req.MaxConnections2, req.Heartbeat2
	}
	lv := newLive(mp)
	lv.ownsPorts = true
	var err error
	mp.Port1, err = m.bindFree(func(p int) error { return m.openSide(ctx, lv, tr, 1, p) })
	if err != nil {
		return Mapping{}, err
	}
	mp.Port2, err = m.bindFree(func(p int) error { return m.openSide(ctx, lv, tr, 2, p) })
	if err != nil {
		m.closeLive(lv)
		m.cfg.Ports.Release(mp.Port1)
		return Mapping{}, err
	}
	lv.m = mp
	if err := m.cfg.Store.Add(ctx, toStored(mp)); err != nil {
		m.closeLive(lv)
		m.cfg.Ports.Release(mp.Port1)
		m.cfg.Ports.Release(mp.Port2)
		return Mapping{}, fmt.Errorf("core: store mapping %s: %w", mp.ID, err)
	}
	if err := m.register(lv); err != nil {
		// Closed while adding: the mapping is stored and reopens next start.
		m.closeLive(lv)
		return Mapping{}, err
	}
	m.log.Info("mapping added", sdk.AttrMappingID, mp.ID, "type", mp.Type, "port1", mp.Port1, "port2", mp.Port2, sdk.AttrTransport, mp.Transport)
	return mp, nil
}

func validate(req *AddRequest) error {
	switch req.Type {
	case TypePublic, TypePrivate:
	case "":
		return fmt.Errorf("%w: type is missing", ErrInvalid)
	default:
		return fmt.Errorf("%w: type %q is neither public nor private", ErrInvalid, req.Type)
	}
	if req.MaxConnections1 <= 0 {
		return fmt.Errorf("%w: maxconnections %d must be positive", ErrInvalid, req.MaxConnections1)
	}
	if req.Type == TypePrivate && req.MaxConnections2 <= 0 {
		return fmt.Errorf("%w: maxconnectionsport2 %d must be positive", ErrInvalid, req.MaxConnections2)
	}
	if req.Heartbeat1 < 0 || req.Heartbeat2 < 0 {
		return fmt.Errorf("%w: heartbeatabsencethreshold is negative", ErrInvalid)
	}
	name1 := "heartbeatabsencethreshold"
	if req.Type == TypePrivate {
		name1 = "heartbeatabsencethresholdport1"
	}
	for _, h := range []struct {
		name string
		d    time.Duration
	}{{name1, req.Heartbeat1}, {"heartbeatabsencethresholdport2", req.Heartbeat2}} {
		if h.d != 0 && h.d < MinHeartbeatThreshold {
			return fmt.Errorf("%w: %s %d ms is below the minimum of %d ms", ErrInvalid, h.name, h.d.Milliseconds(), MinHeartbeatThreshold.Milliseconds())
		}
	}
	if d := req.IdleTimeout; d != 0 && (d < MinIdleTimeout || d > MaxIdleTimeout) {
		return fmt.Errorf("%w: idletimeout %d ms is not 0 (off) or from %d to %d ms", ErrInvalid, d.Milliseconds(), MinIdleTimeout.Milliseconds(), MaxIdleTimeout.Milliseconds())
	}
	if req.ID != "" {
		if err := CheckID(req.ID); err != nil {
			return err
		}
	}
	if err := checkProxyProtocol(req.Type, req.ProxyProtocol); err != nil {
		return err
	}
	if req.Transport != "" && !sdk.ValidName(req.Transport) {
		return fmt.Errorf("%w: transport %q", ErrUnknownTransport, req.Transport)
	}
	return nil
}

// checkProxyProtocol returns an error wrapping [ErrInvalid] unless v is a
// PROXY protocol version a mapping of type typ may have.
func checkProxyProtocol(typ, v string) error {
	if _, err := sdk.ParseProxyVersion(v); err != nil {
		return fmt.Errorf("%w: proxyprotocol %q is not \"v1\", \"v2\" or empty (off)", ErrInvalid, clipValue(v))
	}
	if v != "" && typ != TypePublic {
		return fmt.Errorf("%w: proxyprotocol is for public mappings only (it tells the agent the public client's address); a private mapping has no public client", ErrInvalid)
	}
	return nil
}

// clipValue shortens a client's value for an error message.
func clipValue(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return s
}

func (m *Manager) reserveID(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.mappings[id] != nil || m.pending[id]:
		return fmt.Errorf("%w: %s", ErrDuplicate, id)
	}
	m.pending[id] = true
	return nil
}

func (m *Manager) unreserveID(id string) {
	m.mu.Lock()
	delete(m.pending, id)
	m.mu.Unlock()
}

// bindFree takes free ports until bind succeeds on one, skipping ports
// another process holds. Skipped ports go back to the pool afterwards, to
// be tried again by later requests.
func (m *Manager) bindFree(bind func(port int) error) (int, error) {
	var held []int
	defer func() {
		for _, p := range held {
			m.cfg.Ports.Release(p)
		}
	}()
	for {
		p, err := m.cfg.Ports.Next()
		if err != nil {
			return 0, fmt.Errorf("%w: %d free ports are held by other processes", ErrNoFreePort, len(held))
		}
		err = bind(p)
		if err == nil {
			return p, nil
		}
		if addrInUse(err) {
			m.log.Debug("port held by another process; skipping", sdk.AttrPort, p)
			held = append(held, p)
			continue
		}
		m.cfg.Ports.Release(p)
		return 0, err
	}
}

// addrInUse reports whether err is a failed bind. Plugin transports return
// errors across a process boundary, where only the text survives.
func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

// openSide opens side (1 or 2) of lv on port.
func (m *Manager) openSide(ctx context.Context, lv *live, tr sdk.Transport, side, port int) error {
	addr := net.JoinHostPort(m.cfg.BindHost, strconv.Itoa(port))
	log := m.log.With(sdk.AttrMappingID, lv.m.ID, sdk.AttrSide, side, sdk.AttrPort, port)
	if side == 2 && lv.m.Type == TypePublic {
		ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("core: public port: %w", err)
		}
		if m.cfg.TLS != nil {
			ln = tls.NewListener(ln, m.cfg.TLS)
		}
		lv.pub = m.relistening(ln, addr, log) // listened again if it fails for good
		return nil
	}
	ecfg := sdk.EndpointConfig{
		MappingID: lv.m.ID, Side: side, Mode: sdk.ModePublic, Addr: addr,
		// MaxLinks is the transport's safety cap on links: no agent
		// needs more links than the streams it may carry at once. The
		// mapping's limit on streams is the relay's (lv.limits).
		Passcode: lv.m.Passcode1, MaxLinks: lv.m.MaxConnections1, HeartbeatThreshold: lv.m.Heartbeat1,
		TLS: m.cfg.TLS, Logger: log.With(sdk.AttrTransport, tr.Name()),
	}
	if lv.m.Type == TypePrivate {
		ecfg.Mode = sdk.ModePrivate
		if side == 2 {
			ecfg.Passcode, ecfg.MaxLinks, ecfg.HeartbeatThreshold = lv.m.Passcode2, lv.m.MaxConnections2, lv.m.Heartbeat2
		}
	}
	ep, err := tr.Listen(ctx, ecfg)
	if err != nil {
		return fmt.Errorf("core: %s listen: %w", tr.Name(), err)
	}
	ep = newSlot(tr, ecfg, ep, log) // listened again if it stops on its own
	if side == 1 {
		lv.ep1 = ep
	} else {
		lv.ep2 = ep
	}
	return nil
}

// register records lv and starts its relay.
func (m *Manager) register(lv *live) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.mappings[lv.m.ID] = lv
	if lv.down != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	lv.cancel, lv.done = cancel, make(chan struct{})
	log := m.log.With(sdk.AttrMappingID, lv.m.ID)
	go func() {
		defer close(lv.done)
		if lv.m.Type == TypePublic {
			_ = relay.ServePublic(ctx, lv.pub, lv.ep1, relay.PublicConfig{
				WaitTimeout: m.cfg.PublicWaitTimeout, Counters: &lv.counters, Logger: log,
				IdleTimeout: lv.m.IdleTimeout,
				MaxWaiting:  m.cfg.PublicMaxWaiting, MaxWaitingPerSource: m.cfg.PublicMaxWaitingPerSource,
				Proxy: proxyVersion(lv.m.ProxyProtocol), Limit: lv.limits[0],
			})
			return
		}
		_ = relay.ServePrivate(ctx, lv.ep1, lv.ep2, relay.PrivateConfig{Counters: &lv.counters, Logger: log,
			IdleTimeout: lv.m.IdleTimeout, Limits: lv.limits})
	}()
	return nil
}

// closeLive stops lv's relay and closes its sockets; it does not release
// its ports.
func (m *Manager) closeLive(lv *live) {
	if lv.cancel != nil {
		lv.cancel()
		<-lv.done
	}
	if lv.pub != nil {
		lv.pub.Close()
	}
	for _, ep := range []sdk.Endpoint{lv.ep1, lv.ep2} {
		if ep != nil {
			if err := ep.Close(); err != nil {
				m.log.Warn("closing endpoint", sdk.AttrMappingID, lv.m.ID, "err", err)
			}
		}
	}
}

// Remove durably removes mapping id, stops it and releases its ports. It
// returns [ErrNotFound] for an unknown id.
func (m *Manager) Remove(ctx context.Context, id string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	lv := m.mappings[id]
	if lv == nil {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	delete(m.mappings, id)
	m.pending[id] = true // no re-add of the id until removed from disk
	m.mu.Unlock()
	defer m.unreserveID(id)
	if err := m.cfg.Store.Remove(ctx, id); err != nil {
		m.mu.Lock()
		m.mappings[id] = lv
		m.mu.Unlock()
		return fmt.Errorf("core: store removal of %s: %w", id, err)
	}
	m.closeLive(lv)
	if lv.ownsPorts {
		m.cfg.Ports.Release(lv.m.Port1)
		m.cfg.Ports.Release(lv.m.Port2)
	}
	m.log.Info("mapping removed", sdk.AttrMappingID, id, "port1", lv.m.Port1, "port2", lv.m.Port2)
	return nil
}

// Close stops every mapping. Stored mappings stay stored. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	all := make([]*live, 0, len(m.mappings))
	for _, lv := range m.mappings {
		all = append(all, lv)
	}
	m.mu.Unlock()
	m.cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, lv := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m.closeLive(lv)
		}()
	}
	wg.Wait()
	return nil
}

func toStored(mp Mapping) store.Mapping {
	return store.Mapping{
		ID: mp.ID, Port1: mp.Port1, Port2: mp.Port2,
		MaxConnections1: mp.MaxConnections1, MaxConnections2: mp.MaxConnections2,
		PasscodePort1: mp.Passcode1, PasscodePort2: mp.Passcode2,
		HeartbeatAbsenceThresholdPort1: mp.Heartbeat1.Milliseconds(),
		HeartbeatAbsenceThresholdPort2: mp.Heartbeat2.Milliseconds(),
		Type:                           mp.Type, Transport: mp.Transport,
		IdleTimeout: mp.IdleTimeout.Milliseconds(), ProxyProtocol: mp.ProxyProtocol,
	}
}

// proxyVersion is the sdk form of a validated ProxyProtocol.
func proxyVersion(v string) sdk.ProxyVersion {
	pv, _ := sdk.ParseProxyVersion(v)
	return pv
}

func fromStored(s store.Mapping) Mapping {
	mp := Mapping{
		ID: s.ID, Type: TypePrivate, Port1: s.Port1, Port2: s.Port2,
		Passcode1: s.PasscodePort1, Passcode2: s.PasscodePort2, Transport: s.Transport,
		MaxConnections1: s.MaxConnections1, MaxConnections2: s.MaxConnections2,
		Heartbeat1:    time.Duration(s.HeartbeatAbsenceThresholdPort1) * time.Millisecond,
		Heartbeat2:    time.Duration(s.HeartbeatAbsenceThresholdPort2) * time.Millisecond,
		IdleTimeout:   time.Duration(s.IdleTimeout) * time.Millisecond,
		ProxyProtocol: s.ProxyProtocol,
	}
	if s.IsPublic() {
		mp.Type = TypePublic
	}
	return mp
}

// restoredMapping is fromStored with the settings that a new mapping could
// not have brought into range, each with a warning. The stored record is
// left as it is: a value is never lost because this version cannot use it.
// A heartbeat threshold below MinHeartbeatThreshold (accepted by older
// versions) would drop every link at once, so it runs at the minimum.
func (m *Manager) restoredMapping(s store.Mapping) Mapping {
	mp := fromStored(s)
	warn := func(field string, stored, used time.Duration) {
		m.log.Warn("stored mapping setting out of range; using the nearest valid value (the stored value is kept)",
			sdk.AttrMappingID, mp.ID, "field", field, "stored_ms", stored.Milliseconds(), "used_ms", used.Milliseconds())
	}
	for _, h := range []struct {
		name string
		d    *time.Duration
	}{{"heartbeatabsencethresholdport1", &mp.Heartbeat1}, {"heartbeatabsencethresholdport2", &mp.Heartbeat2}} {
		switch {
		case *h.d < 0:
			warn(h.name, *h.d, 0) // zero: the transport's default
			*h.d = 0
		case *h.d > 0 && *h.d < MinHeartbeatThreshold:
			warn(h.name, *h.d, MinHeartbeatThreshold)
			*h.d = MinHeartbeatThreshold
		}
	}
	switch d := mp.IdleTimeout; {
	case d < 0:
		warn("idletimeout", d, 0)
		mp.IdleTimeout = 0
	case d > 0 && d < MinIdleTimeout:
		warn("idletimeout", d, MinIdleTimeout)
		mp.IdleTimeout = MinIdleTimeout
	case d > MaxIdleTimeout:
		warn("idletimeout", d, MaxIdleTimeout)
		mp.IdleTimeout = MaxIdleTimeout
	}
	return mp
}

var _ Store = (*store.Store)(nil)
