package core

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

// listenTransport binds real loopback listeners and records the configs it
// was given; its endpoints never yield streams.
type listenTransport struct {
	mu   sync.Mutex
	cfgs map[string]sdk.EndpointConfig // by Addr
}

func (t *listenTransport) Name() string { return "test" }

func (t *listenTransport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if t.cfgs == nil {
		t.cfgs = map[string]sdk.EndpointConfig{}
	}
	t.cfgs[cfg.Addr] = cfg
	t.mu.Unlock()
	return &listenEndpoint{ln: ln, done: make(chan struct{})}, nil
}

func (t *listenTransport) Dial(context.Context, sdk.DialConfig) (sdk.Session, error) {
	return nil, errors.ErrUnsupported
}

type listenEndpoint struct {
	ln   net.Listener
	once sync.Once
	done chan struct{}
}

func (e *listenEndpoint) wait(ctx context.Context) (net.Conn, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.done:
		return nil, sdk.ErrClosed
	}
}
func (e *listenEndpoint) Open(ctx context.Context) (net.Conn, error)   { return e.wait(ctx) }
func (e *listenEndpoint) Accept(ctx context.Context) (net.Conn, error) { return e.wait(ctx) }
func (e *listenEndpoint) Close() error {
	e.once.Do(func() { close(e.done); e.ln.Close() })
	return nil
}
func (e *listenEndpoint) Stats() sdk.EndpointStats { return sdk.EndpointStats{Links: 1} }

var (
	_ sdk.Transport     = (*listenTransport)(nil)
	_ sdk.StatsReporter = (*listenEndpoint)(nil)
)

// freePorts returns n ports the kernel just handed out on loopback.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

type fixture struct {
	m     *Manager
	st    *store.Store
	dir   string
	pool  []int
	tr    *listenTransport
	alloc *ports.Allocator
}

func newFixture(t *testing.T, dir string, pool []int) *fixture {
	t.Helper()
	st, stored, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, dir: dir, pool: pool, tr: &listenTransport{}, alloc: ports.New(pool)}
	f.m, err = New(Config{
		BindHost: "127.0.0.1", Ports: f.alloc, Store: st,
		Transports: map[string]sdk.Transport{"test": f.tr}, DefaultTransport: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.Restore(context.Background(), stored); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	t.Cleanup(func() { f.close() })
	return f
}

func (f *fixture) close() {
	f.m.Close()
	f.st.Close()
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestAddPublicAndPrivate(t *testing.T) {
	f := newFixture(t, t.TempDir(), freePorts(t, 6))
	pub, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 60, Heartbeat1: 200 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Passcode2 != "" || pub.Passcode1 == "" || pub.Port1 == pub.Port2 {
		t.Fatalf("public mapping %+v", pub)
	}
	// The public port answers TCP.
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(pub.Port2)), 5*time.Second)
	if err != nil {
		t.Fatalf("public port not listening: %v", err)
	}
	c.Close()
	cfg := f.tr.cfgs[net.JoinHostPort("127.0.0.1", strconv.Itoa(pub.Port1))]
	if cfg.Passcode != pub.Passcode1 || cfg.MaxLinks != 60 || cfg.HeartbeatThreshold != 200*time.Second || cfg.Mode != sdk.ModePublic {
		t.Fatalf("transport got %+v", cfg)
	}
	priv, err := f.m.Add(ctx(t), AddRequest{Type: TypePrivate, MaxConnections1: 1, MaxConnections2: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := f.tr.cfgs[net.JoinHostPort("127.0.0.1", strconv.Itoa(priv.Port2))]
	if cfg2.Passcode != priv.Passcode2 || cfg2.Mode != sdk.ModePrivate || cfg2.Side != 2 {
		t.Fatalf("side 2 got %+v", cfg2)
	}
	seen := map[int]bool{}
	for _, p := range []int{pub.Port1, pub.Port2, priv.Port1, priv.Port2} {
		if seen[p] {
			t.Fatalf("port %d used twice", p)
		}
		seen[p] = true
	}
	st, err := f.m.Status(priv.ID)
	if err != nil || !st.Side1.Active || st.Side1.Links != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if s := f.m.Summary(); s.Mappings != 2 || s.FreePorts != 2 || s.PublicMappings != 1 {
		t.Fatalf("Summary = %+v", s)
	}
}

func TestAddErrors(t *testing.T) {
	f := newFixture(t, t.TempDir(), freePorts(t, 4))
	tests := []struct {
		name string
		req  AddRequest
		want error
	}{
		{"no type", AddRequest{MaxConnections1: 1}, ErrInvalid},
		{"bad type", AddRequest{Type: "x", MaxConnections1: 1}, ErrInvalid},
		{"zero limit", AddRequest{Type: TypePublic}, ErrInvalid},
		{"zero limit port2", AddRequest{Type: TypePrivate, MaxConnections1: 1}, ErrInvalid},
		{"negative heartbeat", AddRequest{Type: TypePublic, MaxConnections1: 1, Heartbeat1: -1}, ErrInvalid},
		{"unknown transport", AddRequest{Type: TypePublic, MaxConnections1: 1, Transport: "carrier-pigeon"}, ErrUnknownTransport},
		{"unknown proxyprotocol", AddRequest{Type: TypePublic, MaxConnections1: 1, ProxyProtocol: "v3"}, ErrInvalid},
		{"proxyprotocol on private", AddRequest{Type: TypePrivate, MaxConnections1: 1, MaxConnections2: 1, ProxyProtocol: "v1"}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.m.Add(ctx(t), tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("Add: %v, want %v", err, tt.want)
			}
		})
	}
	if f.alloc.Free() != 4 || len(f.m.List()) != 0 {
		t.Fatalf("failed adds changed state: free %d, mappings %d", f.alloc.Free(), len(f.m.List()))
	}
	m, err := f.m.Add(ctx(t), AddRequest{ID: "fixed", Type: TypePublic, MaxConnections1: 1})
	if err != nil || m.ID != "fixed" {
		t.Fatal(m, err)
	}
	if _, err := f.m.Add(ctx(t), AddRequest{ID: "fixed", Type: TypePublic, MaxConnections1: 1}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := f.m.Remove(ctx(t), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove unknown: %v", err)
	}
	if _, err := f.m.Status("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Status unknown: %v", err)
	}
}

func TestExhaustionAndRelease(t *testing.T) {
	f := newFixture(t, t.TempDir(), freePorts(t, 5))
	var ids []string
	for range 2 {
		m, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if _, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1}); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("third add with 1 port left: %v, want ErrNoFreePort", err)
	}
	if f.alloc.Free() != 1 {
		t.Fatalf("failed add leaked ports: free %d", f.alloc.Free())
	}
	if err := f.m.Remove(ctx(t), ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1}); err != nil {
		t.Fatalf("add after remove: %v", err)
	}
}

func TestSkipsPortHeldByAnotherProcess(t *testing.T) {
	pool := freePorts(t, 3)
	held, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(pool[0])))
	if err != nil {
		t.Skipf("port %d got taken meanwhile: %v", pool[0], err)
	}
	defer held.Close()
	f := newFixture(t, t.TempDir(), pool)
	m, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m.Port1 == pool[0] || m.Port2 == pool[0] {
		t.Fatalf("mapping %+v uses port %d held by someone else", m, pool[0])
	}
	if f.alloc.Free() != 1 {
		t.Fatalf("held port not returned to the pool: free %d", f.alloc.Free())
	}
}

func TestRestoreSamePortsAndPasscodes(t *testing.T) {
	dir := t.TempDir()
	pool := freePorts(t, 6)
	f := newFixture(t, dir, pool)
	var want []Mapping
	for _, typ := range []string{TypePublic, TypePrivate} {
		req := AddRequest{Type: typ, MaxConnections1: 3, MaxConnections2: 2, Heartbeat1: time.Second, Heartbeat2: 2 * time.Second}
		if typ == TypePublic {
			req.ProxyProtocol = "v2" // comes back after a restart too
		}
		m, err := f.m.Add(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	f.close()
	f2 := newFixture(t, dir, pool)
	for _, w := range want {
		st, err := f2.m.Status(w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mapping != w {
			t.Fatalf("restored %+v, want %+v", st.Mapping, w)
		}
		if st.Down() != "" {
			t.Fatalf("restored mapping down: %s", st.Down())
		}
	}
	if f2.alloc.Free() != 2 {
		t.Fatalf("restored ports not reserved: free %d", f2.alloc.Free())
	}
	// A new add does not reuse a restored port.
	m, err := f2.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if m.Port1 == w.Port1 || m.Port1 == w.Port2 || m.Port2 == w.Port1 || m.Port2 == w.Port2 {
			t.Fatalf("new mapping %+v reuses a restored port", m)
		}
	}
}

func TestConcurrentAddsGetDistinctPorts(t *testing.T) {
	pool := freePorts(t, 40)
	f := newFixture(t, t.TempDir(), pool)
	var mu sync.Mutex
	seen := map[int]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				m, err := f.m.Add(ctx(t), AddRequest{Type: TypePrivate, MaxConnections1: 1, MaxConnections2: 1})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, p := range []int{m.Port1, m.Port2} {
					if seen[p] {
						t.Errorf("port %d handed out twice", p)
					}
					seen[p] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 32 {
		t.Fatalf("%d ports in use, want 32", len(seen))
	}
}

// TestRestoreKeepsUnopenableMappings: a stored mapping whose port another
// process now holds is kept (shown down, removable); one outside the
// shrunk pool is reopened anyway.
func TestRestoreKeepsUnopenableMappings(t *testing.T) {
	dir := t.TempDir()
	pool := freePorts(t, 6)
	f := newFixture(t, dir, pool)
	a, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.close()
	held, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port1)))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	st, stored, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The new pool no longer holds b's ports.
	var smaller []int
	for _, p := range pool {
		if p != b.Port1 && p != b.Port2 {
			smaller = append(smaller, p)
		}
	}
	m, err := New(Config{
		BindHost: "127.0.0.1", Ports: ports.New(smaller), Store: st,
		Transports: map[string]sdk.Transport{"test": &listenTransport{}}, DefaultTransport: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Restore(ctx(t), stored); err == nil {
		t.Fatal("Restore reported no failure with a port held elsewhere")
	}
	sa, err := m.Status(a.ID)
	if err != nil || sa.Down() == "" || sa.Side1.Active {
		t.Fatalf("mapping on a held port: %+v %v; want it kept and down", sa, err)
	}
	sb, err := m.Status(b.ID)
	if err != nil || sb.Down() != "" {
		t.Fatalf("mapping outside the pool: %+v %v; want it reopened", sb, err)
	}
	e2eDial(t, b.Port2)
	if err := m.Remove(ctx(t), a.ID); err != nil {
		t.Fatalf("removing a down mapping: %v", err)
	}
	if err := m.Remove(ctx(t), b.ID); err != nil {
		t.Fatal(err)
	}
	if got := m.cfg.Ports.Free(); got != len(smaller) {
		t.Fatalf("free ports after removing both: %d, want %d", got, len(smaller))
	}
}

func e2eDial(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatalf("port %d not listening: %v", port, err)
	}
	c.Close()
}

// TestRestoreDuplicatePortsDoNotFreeTheOwner: two stored mappings claim
// the same ports; removing the one that could not reopen leaves the
// other's ports taken.
func TestRestoreDuplicatePortsDoNotFreeTheOwner(t *testing.T) {
	dir := t.TempDir()
	pool := freePorts(t, 4)
	// The store refuses to hold two mappings on the same ports, so the
	// duplicate list is handed to Restore directly: the manager must still
	// cope with one.
	var stored []store.Mapping
	for _, id := range []string{"first", "second"} {
		stored = append(stored, store.Mapping{ID: id, Port1: pool[0], Port2: pool[1], MaxConnections1: 1, PasscodePort1: "p", Type: "public"})
	}
	f := &fixture{}
	st, _, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f.alloc = ports.New(pool)
	m, err := New(Config{BindHost: "127.0.0.1", Ports: f.alloc, Store: st,
		Transports: map[string]sdk.Transport{"test": &listenTransport{}}, DefaultTransport: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_ = m.Restore(ctx(t), stored)
	var down string
	for _, s := range m.List() {
		if s.Down() != "" {
			down = s.ID
		}
	}
	if down == "" {
		t.Fatal("no mapping is down although both claim the same ports")
	}
	if err := m.Remove(ctx(t), down); err != nil {
		t.Fatal(err)
	}
	if got := f.alloc.Free(); got != 2 {
		t.Fatalf("free ports %d after removing the duplicate, want 2 (the owner keeps its ports)", got)
	}
}
