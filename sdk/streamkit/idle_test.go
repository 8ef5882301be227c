package streamkit

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

func waitIdle(t *testing.T, ep sdk.Endpoint, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ep.(sdk.StatsReporter).Stats().IdleLinks != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := ep.(sdk.StatsReporter).Stats().IdleLinks; got != want {
		t.Fatalf("Stats().IdleLinks = %d, want %d", got, want)
	}
}

// TestIdleLinks: a session keeps Config.IdleLinks idle links; Open binds
// a stream to one (with its origin) and the agent dials a replacement;
// with none configured, streams are dialled on request.
func TestIdleLinks(t *testing.T) {
	for _, n := range []int{0, 3, -1} {
		var mu sync.Mutex
		kinds := map[byte]int{}
		dial := func(ctx context.Context, cfg sdk.DialConfig) (net.Conn, error) {
			c, err := DialTCP(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return &kindConn{Conn: c, seen: func(k byte) { mu.Lock(); kinds[k]++; mu.Unlock() }}, nil
		}
		tr := New(Config{Name: "tcpkit", Listen: ListenTCP, Dial: dial, IdleLinks: n})
		want := max(tr.cfg.IdleLinks, 0)
		ep, s := transporttest.Setup(t, tr, "tcp", sdk.EndpointConfig{}, sdk.DialConfig{})
		waitIdle(t, ep, want)
		for range 5 {
			waitIdle(t, ep, want) // each stream finds an idle link
			open := func(ctx context.Context) (net.Conn, error) {
				return ep.Open(sdk.WithOrigin(ctx, testOrigin))
			}
			c, a := transporttest.Pair(t, t.Context(), openEndpoint{ep, open}, s)
			if o, ok := a.(sdk.OriginStream).Origin(); !ok || o != testOrigin {
				t.Fatalf("IdleLinks %d: origin %+v, %v", n, o, ok)
			}
			transporttest.Echo(t, c, a, "bound")
			c.Close()
			a.Close()
		}
		waitIdle(t, ep, want)
		if st := ep.(sdk.StatsReporter).Stats(); st.Streams != 0 || st.Links != 1 {
			t.Fatalf("IdleLinks %d: Stats() = %+v after the streams closed", n, st)
		}
		mu.Lock()
		data, idle := kinds[kindData], kinds[kindIdle]
		mu.Unlock()
		if want > 0 && (data != 0 || idle != want+5) {
			t.Errorf("IdleLinks %d: the agent dialled %d streams on request and %d idle links, want 0 and %d", n, data, idle, want+5)
		}
		if want == 0 && (data != 5 || idle != 0) {
			t.Errorf("IdleLinks %d: the agent dialled %d streams on request and %d idle links, want 5 and 0", n, data, idle)
		}
	}
}

// kindConn reports the kind byte of the header written on it.
type kindConn struct {
	net.Conn
	once sync.Once
	seen func(byte)
}

func (c *kindConn) Write(b []byte) (int, error) {
	c.once.Do(func() {
		if len(b) > 4 {
			c.seen(b[4])
		}
	})
	return c.Conn.Write(b)
}

// openEndpoint is ep whose Open is open.
type openEndpoint struct {
	sdk.Endpoint
	open func(context.Context) (net.Conn, error)
}

func (e openEndpoint) Open(ctx context.Context) (net.Conn, error) { return e.open(ctx) }

// TestDeadIdleLinkFallsBack: an idle link whose agent never answers the
// bind (it died without a word, behind a NAT that forgot it) costs Open
// the bind timeout, then the stream is requested on the control
// connection.
func TestDeadIdleLinkFallsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the bind timeout")
	}
	tr := New(Config{Name: "tcpkit", Listen: ListenTCP, Dial: DialTCP, IdleLinks: -1})
	ep, s := transporttest.Setup(t, tr, "tcp", sdk.EndpointConfig{}, sdk.DialConfig{})
	e := ep.(*endpoint)
	e.mu.Lock()
	l := e.links[0]
	e.mu.Unlock()
	near, far := net.Pipe()
	defer far.Close()
	go func() { // the dead agent reads the bind and never answers
		buf := make([]byte, 64)
		for {
			if _, err := far.Read(buf); err != nil {
				return
			}
		}
	}()
	il := &idleLink{c: near, done: make(chan struct{})}
	if !l.addIdle(il) {
		t.Fatal("addIdle refused")
	}
	go func() { // its reader, as endpoint.idleLink runs it
		near.Read(make([]byte, 1))
		close(il.done)
	}()
	start := time.Now()
	c, a := transporttest.Pair(t, t.Context(), ep, s)
	if d := time.Since(start); d < bindTimeout {
		t.Fatalf("Open took %v, want the %v bind timeout first", d, bindTimeout)
	}
	transporttest.Echo(t, c, a, "after the fallback")
}
