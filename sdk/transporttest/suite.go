package transporttest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// MakeTransport returns a fresh transport for one subtest, and the options
// the suite runs it with. It is called once per subtest; register any
// clean-up with t.Cleanup.
type MakeTransport func(t *testing.T) (sdk.Transport, Options)

// Options tells the suite what the transport under test needs. The zero
// value suits a plain TCP transport.
type Options struct {
	// TLS makes the suite generate a self-signed certificate for
	// 127.0.0.1 and pass server and client TLS configs in every
	// EndpointConfig and DialConfig. False means both are nil.
	TLS bool
	// Network is what the agent port speaks, "tcp" or "udp", so that the
	// suite's silent proxy and black hole speak it too. Empty means "tcp".
	Network string
	// HeartbeatThreshold is the threshold the HeartbeatAbsence subtest
	// configures on both halves (the agent beats at a fifth of it), and
	// the AgentFrozen subtest on the endpoint alone. Zero means 2s.
	HeartbeatThreshold time.Duration
	// Streams is how many concurrent streams ConcurrentStreams runs. Zero
	// means 16.
	Streams int
	// StreamBytes is how many bytes each of those streams carries in each
	// direction. Zero means 256 KiB (8 MiB in all with 16 streams).
	StreamBytes int
	// Timeout is each subtest's watchdog: past it everything the subtest
	// opened is closed and the subtest fails. Zero means 2 minutes.
	Timeout time.Duration
	// Skip names subtests not to run and says why, e.g.
	// {"NetConn": "https://github.com/iofog/iofog-connector/issues/NN"}.
	// A skipped subtest is reported as skipped, never as passed.
	Skip map[string]string
	// Logger receives the endpoints' and sessions' logs. Nil discards.
	Logger *slog.Logger
	// Origins says the transport carries a stream's origin
	// ([sdk.WithOrigin] given to Endpoint.Open) to the agent's stream
	// ([sdk.OriginStream]). The Origin subtest checks it, and is skipped
	// when this is false: a transport need not carry origins.
	Origins bool
}

func (o *Options) defaults() {
	if o.Network == "" {
		o.Network = "tcp"
	}
	if o.HeartbeatThreshold == 0 {
		o.HeartbeatThreshold = 2 * time.Second
	}
	if o.Streams == 0 {
		o.Streams = 16
	}
	if o.StreamBytes == 0 {
		o.StreamBytes = 256 << 10
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
}

// subtests lists the suite in the order it runs.
var subtests = []struct {
	name string
	fn   func(t *testing.T, e *env)
}{
	{"Config", testConfig},
	{"BasicIO", testBasicIO},
	{"PingPong", testPingPong},
	{"BadPasscode", testBadPasscode},
	{"LinkLimit", testLinkLimit},
	{"StreamLimit", testStreamLimit},
	{"LargeTransfer", testLargeTransfer},
	{"ConcurrentStreams", testConcurrentStreams},
	{"Isolation", testIsolation},
	{"PrivateMode", testPrivateMode},
	{"HalfClose", testHalfClose},
	{"CloseUnblocks", testCloseUnblocks},
	{"StreamsOutliveClose", testStreamsOutliveClose},
	{"ContextCancel", testContextCancel},
	{"HeartbeatAbsence", testHeartbeatAbsence},
	{"AgentFrozen", testAgentFrozen},
	{"NetConn", testNetConn},
	{"Origin", testOrigin},
	{"LogAttrsOnce", testLogAttrsOnce},
	{"NoLeaks", testNoLeaks},
}

// Subtests returns the names of the suite's subtests, in the order they
// run, for use in [Options.Skip].
func Subtests() []string {
	names := make([]string, len(subtests))
	for i, s := range subtests {
		names[i] = s.name
	}
	return names
}

// TestTransport runs the conformance suite against the transport mk makes.
// Each subtest gets a fresh transport, fresh endpoints on loopback ports
// chosen by the kernel, and a watchdog. See the package documentation for
// what each subtest checks.
func TestTransport(t *testing.T, mk MakeTransport) {
	t.Helper()
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) {
			tr, opts := mk(t)
			opts.defaults()
			if reason, ok := opts.Skip[st.name]; ok {
				t.Skip(reason)
			}
			e := newEnv(t, tr, opts)
			done := make(chan struct{})
			wd := time.AfterFunc(opts.Timeout, func() {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("watchdog: %s ran over %v; closing everything it opened. Goroutines:\n%s", t.Name(), opts.Timeout, buf)
				e.closeAll()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					panic(fmt.Sprintf("transporttest: %s still hung 30s after its watchdog closed everything", t.Name()))
				}
			})
			defer func() {
				wd.Stop()
				close(done)
			}()
			defer e.closeAll()
			st.fn(t, e)
		})
	}
}

// env is one subtest's world: its transport and everything it opened.
type env struct {
	t    *testing.T
	tr   sdk.Transport
	opts Options
	tls  *tlsPair

	mu      sync.Mutex
	closers []io.Closer
}

func newEnv(t *testing.T, tr sdk.Transport, opts Options) *env {
	e := &env{t: t, tr: tr, opts: opts}
	if opts.TLS {
		e.tls = newTLSPair(t)
	}
	return e
}

// track registers c to be closed when the subtest ends (or its watchdog
// fires) and returns it.
func (e *env) track(c io.Closer) {
	if c == nil {
		return
	}
	e.mu.Lock()
	e.closers = append(e.closers, c)
	e.mu.Unlock()
}

func (e *env) closeAll() {
	e.mu.Lock()
	cs := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i].Close()
	}
}

// ctx returns a context bounded by d, cancelled when the subtest ends.
func (e *env) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	return ctx
}

// endpointConfig returns a valid config for a fresh endpoint; Addr is
// filled in by listen.
func (e *env) endpointConfig() sdk.EndpointConfig {
	cfg := sdk.EndpointConfig{
		MappingID: rand.Text(),
		Side:      1,
		Mode:      sdk.ModePublic,
		Passcode:  rand.Text(),
		Logger:    e.opts.Logger,
	}
	if e.tls != nil {
		cfg.TLS = e.tls.server.Clone()
	}
	return cfg
}

// listen starts an endpoint with cfg on a free loopback port, retrying
// when another process takes the port between the probe and the bind.
func (e *env) listen(cfg sdk.EndpointConfig) (sdk.Endpoint, string) {
	e.t.Helper()
	var lastErr error
	for range 10 {
		addr, err := freeAddr(e.opts.Network)
		if err != nil {
			e.t.Fatalf("finding a free %s port: %v", e.opts.Network, err)
		}
		cfg.Addr = addr
		ep, err := e.tr.Listen(e.ctx(30*time.Second), cfg)
		if errors.Is(err, syscall.EADDRINUSE) {
			lastErr = err
			continue
		}
		if err != nil {
			e.t.Fatalf("Listen(%s): %v", addr, err)
		}
		if ep == nil {
			e.t.Fatalf("Listen(%s) returned a nil Endpoint and no error", addr)
		}
		e.track(ep)
		return ep, addr
	}
	e.t.Fatalf("Listen: every free port probed was taken: %v", lastErr)
	return nil, ""
}

// dialConfig returns a config reaching addr with passcode.
func (e *env) dialConfig(addr, passcode string) sdk.DialConfig {
	cfg := sdk.DialConfig{Addr: addr, Passcode: passcode, Logger: e.opts.Logger}
	if e.tls != nil {
		cfg.TLS = e.tls.client.Clone()
	}
	return cfg
}

// dial returns a session or fails the test.
func (e *env) dial(cfg sdk.DialConfig) sdk.Session {
	e.t.Helper()
	s, err := e.tr.Dial(e.ctx(30*time.Second), cfg)
	if err != nil {
		e.t.Fatalf("Dial(%s): %v", cfg.Addr, err)
	}
	if s == nil {
		e.t.Fatalf("Dial(%s) returned a nil Session and no error", cfg.Addr)
	}
	e.track(s)
	return s
}

// setup is the common case: one public endpoint and one session to it.
func (e *env) setup() (sdk.Endpoint, sdk.Session) {
	e.t.Helper()
	cfg := e.endpointConfig()
	ep, addr := e.listen(cfg)
	return ep, e.dial(e.dialConfig(addr, cfg.Passcode))
}

// pair returns a stream opened by the endpoint (c, connector side) and the
// same stream as the session accepted it (a, agent side).
func (e *env) pair(ep sdk.Endpoint, s sdk.Session) (c, a net.Conn) {
	e.t.Helper()
	return e.join(ep.Open, s.Accept, "Endpoint.Open", "Session.Accept")
}

// privatePair returns a stream the agent opened (a) as the endpoint
// accepted it (c).
func (e *env) privatePair(ep sdk.Endpoint, s sdk.Session) (c, a net.Conn) {
	e.t.Helper()
	return e.join(ep.Accept, s.Open, "Endpoint.Accept", "Session.Open")
}

type connFunc func(context.Context) (net.Conn, error)

func (e *env) join(cf, af connFunc, cname, aname string) (c, a net.Conn) {
	e.t.Helper()
	c, a = join(e.t, e.ctx(30*time.Second), cf, af, cname, aname)
	e.track(c) // the watchdog closes them too
	e.track(a)
	return c, a
}
