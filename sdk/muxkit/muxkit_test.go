package muxkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// fakeConn is one end of an in-memory multiplexed connection whose
// streams are net.Pipe pairs.
type fakeConn struct {
	peer   *fakeConn
	in     chan muxkit.Stream // streams the peer opened
	shared *ended
	away   atomic.Bool // the peer said go-away
	awayCh chan struct{}
	once   sync.Once // closes awayCh
	dead   atomic.Bool
}

type ended struct {
	done chan struct{}
	once sync.Once
}

var errFake = errors.New("fake: refused")

func fakePair() (*fakeConn, *fakeConn) {
	e := &ended{done: make(chan struct{})}
	a := &fakeConn{in: make(chan muxkit.Stream, 16), shared: e, awayCh: make(chan struct{})}
	b := &fakeConn{in: make(chan muxkit.Stream, 16), shared: e, awayCh: make(chan struct{})}
	a.peer, b.peer = b, a
	return a, b
}

func (c *fakeConn) OpenStream(ctx context.Context) (muxkit.Stream, error) {
	if c.away.Load() {
		return nil, errFake
	}
	if c.isClosed() {
		return nil, net.ErrClosed
	}
	x, y := net.Pipe()
	select {
	case c.peer.in <- &fakeStream{Conn: y}:
		return &fakeStream{Conn: x}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.shared.done:
		return nil, net.ErrClosed
	}
}

func (c *fakeConn) AcceptStream(ctx context.Context) (muxkit.Stream, error) {
	if c.isClosed() {
		return nil, net.ErrClosed
	}
	select {
	case s := <-c.in:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.shared.done:
		return nil, net.ErrClosed
	case <-c.awayCh:
		return nil, errFake
	}
}

func (c *fakeConn) GoAway() {
	c.peer.away.Store(true)
	c.peer.once.Do(func() { close(c.peer.awayCh) })
}

func (c *fakeConn) GoneAway() bool { return c.away.Load() }

func (c *fakeConn) Probe(context.Context) error {
	if c.dead.Load() {
		return errFake
	}
	return nil
}

func (c *fakeConn) Close() error {
	c.shared.once.Do(func() { close(c.shared.done) })
	return nil
}

func (c *fakeConn) Done() <-chan struct{} { return c.shared.done }

func (c *fakeConn) isClosed() bool {
	select {
	case <-c.shared.done:
		return true
	default:
		return false
	}
}

type fakeStream struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (s *fakeStream) OnClose(f func()) { s.onClose = f }

func (s *fakeStream) Close() error {
	s.once.Do(func() {
		s.Conn.Close()
		if s.onClose != nil {
			s.onClose()
		}
	})
	return nil
}

var (
	_ muxkit.Conn   = (*fakeConn)(nil)
	_ muxkit.Stream = (*fakeStream)(nil)
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// link adds a new fake link to ep and returns the agent's session on it.
func link(t *testing.T, ep *muxkit.Endpoint) (*muxkit.Session, *fakeConn) {
	t.Helper()
	if err := ep.Reserve(); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	c, a := fakePair()
	ep.Add(c)
	return muxkit.NewSession("fake", a), c
}

func TestEndpointRoundRobinAndStats(t *testing.T) {
	ctx := testCtx(t)
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{Name: "fake", MaxLinks: 2})
	defer ep.Close()
	s1, _ := link(t, ep)
	s2, _ := link(t, ep)
	defer s1.Close()
	defer s2.Close()

	var opened []net.Conn
	for range 4 {
		c, err := ep.Open(ctx)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		opened = append(opened, c)
	}
	var got []net.Conn
	for i, s := range []*muxkit.Session{s1, s2} {
		for range 2 {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			a, err := s.Accept(actx)
			cancel()
			if err != nil {
				t.Fatalf("session %d: Accept: %v (Open is not round robin?)", i, err)
			}
			got = append(got, a)
		}
	}
	if st := ep.Stats(); st.Links != 2 || st.Streams != 4 {
		t.Errorf("Stats() = %+v, want Links 2, Streams 4", st)
	}

	// The agent opens one; the connector accepts it and bytes flow.
	ac, err := s1.Open(ctx)
	if err != nil {
		t.Fatalf("Session.Open: %v", err)
	}
	cc, err := ep.Accept(ctx)
	if err != nil {
		t.Fatalf("Endpoint.Accept: %v", err)
	}
	go ac.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(cc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v; want hello", buf, err)
	}
	if st := ep.Stats(); st.Streams != 5 {
		t.Errorf("Stats().Streams = %d, want 5", st.Streams)
	}
	for _, c := range append(append(opened, got...), ac, cc) {
		c.Close()
	}
	if st := ep.Stats(); st.Streams != 0 || st.Links != 2 {
		t.Errorf("Stats() = %+v after closing every stream, want Links 2, Streams 0", st)
	}
}

func TestEndpointLinkLimitAndReclaim(t *testing.T) {
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{MaxLinks: 1})
	defer ep.Close()
	if err := ep.Reserve(); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := ep.Reserve(); !errors.Is(err, sdk.ErrLinkLimit) {
		t.Fatalf("Reserve with one pending at MaxLinks 1: %v, want sdk.ErrLinkLimit", err)
	}
	c, _ := fakePair()
	ep.Add(c)
	if err := ep.Reserve(); !errors.Is(err, sdk.ErrLinkLimit) {
		t.Fatalf("Reserve while the idle link answers: %v, want sdk.ErrLinkLimit", err)
	}
	if c.isClosed() {
		t.Fatal("a link that answers its probe was closed")
	}
	c.dead.Store(true)
	if err := ep.Reserve(); err != nil {
		t.Fatalf("Reserve once the idle link stopped answering: %v, want nil", err)
	}
	if !c.isClosed() {
		t.Error("the dead idle link was not closed")
	}
	if st := ep.Stats(); st.Links != 0 {
		t.Errorf("Stats().Links = %d after reclaim, want 0", st.Links)
	}
	ep.Unreserve()
}

func TestEndpointCloseDrains(t *testing.T) {
	ctx := testCtx(t)
	closed := 0
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{CloseListener: func() error { closed++; return nil }})
	busy, busyConn := link(t, ep)
	_, idleConn := link(t, ep)
	c, err := ep.Open(ctx)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Which link carries the stream depends on the ring order.
	actx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = busy.Accept(actx)
	cancel()
	if err != nil {
		busyConn, idleConn = idleConn, busyConn
	}

	openErr := make(chan error, 1)
	go func() {
		_, err := ep.Accept(ctx)
		openErr <- err
	}()
	if err := ep.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-openErr; !errors.Is(err, sdk.ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("pending Accept after Close: %v, want sdk.ErrClosed", err)
	}
	if _, err := ep.Open(ctx); !errors.Is(err, sdk.ErrClosed) {
		t.Errorf("Open after Close: %v, want sdk.ErrClosed", err)
	}
	if closed != 1 {
		t.Errorf("CloseListener called %d times, want 1", closed)
	}
	if !idleConn.isClosed() {
		t.Error("the idle link is still open after Close")
	}
	if busyConn.isClosed() {
		t.Fatal("the link carrying a stream was closed by Close")
	}
	if !busyConn.peer.GoneAway() {
		t.Error("the agent of the busy link was not told to go away")
	}
	c.Close()
	if !busyConn.isClosed() {
		t.Error("the draining link stayed open after its last stream closed")
	}
	if err := ep.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// A link admitted as the endpoint closes is closed at once.
	late, _ := fakePair()
	ep.Add(late)
	if !late.isClosed() {
		t.Error("Add on a closed endpoint left the link open")
	}
}

func TestEndpointCloseListenerError(t *testing.T) {
	boom := errors.New("boom")
	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{Name: "fake", CloseListener: func() error { return boom }})
	err := ep.Close()
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "fake: ") {
		t.Fatalf("Close: %v, want a fake: error wrapping boom", err)
	}
	if err2 := ep.Close(); err2 != err {
		t.Errorf("second Close: %v, want the first's %v", err2, err)
	}
}

func TestSessionClose(t *testing.T) {
	ctx := testCtx(t)
	a, c := fakePair()
	s := muxkit.NewSession("fake", a)
	if s.Conn() != a {
		t.Error("Conn() is not the connection the session was made with")
	}
	st, err := s.Open(ctx)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	pending := make(chan error, 1)
	go func() {
		_, err := s.Accept(ctx)
		pending <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-pending; !errors.Is(err, sdk.ErrClosed) {
		t.Errorf("pending Accept after Close: %v, want sdk.ErrClosed", err)
	}
	if _, err := s.Open(ctx); !errors.Is(err, sdk.ErrClosed) {
		t.Errorf("Open after Close: %v, want sdk.ErrClosed", err)
	}
	if a.isClosed() {
		t.Fatal("Close closed the connection while a stream was open")
	}
	if !c.GoneAway() {
		t.Error("Close with a stream open did not tell the connector to go away")
	}
	st.Close()
	if !a.isClosed() {
		t.Error("the connection stayed open after the last stream closed")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSessionConnectionEnded(t *testing.T) {
	ctx := testCtx(t)
	a, c := fakePair()
	s := muxkit.NewSession("fake", a)
	defer s.Close()
	c.Close()
	_, err := s.Open(ctx)
	if !errors.Is(err, net.ErrClosed) || !strings.HasPrefix(err.Error(), "fake: session open") {
		t.Errorf("Open on an ended connection: %v, want a fake: error wrapping net.ErrClosed", err)
	}

	a2, c2 := fakePair()
	s2 := muxkit.NewSession("fake", a2)
	defer s2.Close()
	c2.GoAway()
	if _, err := s2.Accept(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after the connector's go-away: %v, want net.ErrClosed", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s2.Open(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestHandshake(t *testing.T) {
	errMine := errors.New("mine: handshake protocol error")
	h := muxkit.Handshake{Name: "mine", ErrProtocol: errMine}
	hello := func(v byte, pass string) []byte {
		var b bytes.Buffer
		hv := h
		hv.Version = v
		if err := hv.WriteHello(&b, pass); err != nil {
			t.Fatalf("WriteHello: %v", err)
		}
		return b.Bytes()
	}
	if got := hello(0, "pw")[4]; got != muxkit.Version {
		t.Errorf("a zero Handshake.Version sends version %d, want the newest, %d", got, muxkit.Version)
	}
	tests := []struct {
		name        string
		in          []byte
		wantAnswer  muxkit.Answer
		wantVersion byte
		wantErr     error
	}{
		{"right passcode", hello(0, "pw"), muxkit.AnswerOK, muxkit.Version4, nil},
		{"right passcode, version 3", hello(3, "pw"), muxkit.AnswerOK, muxkit.Version3, nil},
		{"right passcode, version 2", hello(2, "pw"), muxkit.AnswerOK, muxkit.Version2, nil},
		{"right passcode, version 1", hello(1, "pw"), muxkit.AnswerOK, muxkit.Version1, nil},
		{"wrong passcode", hello(0, "nope"), muxkit.AnswerBadPasscode, muxkit.Version4, nil},
		{"wrong passcode, version 1", hello(1, "nope"), muxkit.AnswerBadPasscode, muxkit.Version1, nil},
		{"future version", append([]byte("IOFY\x05"), hello(0, "pw")[5:]...), muxkit.AnswerIncompatible, muxkit.Version1, nil},
		{"version 0", append([]byte("IOFY\x00"), hello(0, "pw")[5:]...), muxkit.AnswerIncompatible, muxkit.Version1, nil},
		{"bad magic", []byte("HTTP/1.1"), 0, 0, errMine},
		{"passcode too long", []byte("IOFY\x02\xff\xff"), 0, 0, errMine},
		{"short", []byte("IOF"), 0, 0, io.ErrUnexpectedEOF},
		{"short passcode", []byte("IOFY\x02\x00\x05pw"), 0, 0, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, hl, err := h.ReadHello(bytes.NewReader(tt.in), "pw")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ReadHello: %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got != tt.wantAnswer || hl.Version != tt.wantVersion) {
				t.Errorf("ReadHello = %d, version %d; want %d, version %d", got, hl.Version, tt.wantAnswer, tt.wantVersion)
			}
		})
	}
	if err := h.WriteHello(io.Discard, strings.Repeat("x", 5000)); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("WriteHello with a 5000-byte passcode: %v, want sdk.ErrInvalidConfig", err)
	}
	if err := (muxkit.Handshake{Version: 9}).WriteHello(io.Discard, "pw"); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("WriteHello in an unknown version: %v, want sdk.ErrInvalidConfig", err)
	}
	if _, _, err := (muxkit.Handshake{}).ReadHello(strings.NewReader("NOPE..."), ""); !errors.Is(err, muxkit.ErrProtocol) {
		t.Errorf("zero Handshake, bad magic: %v, want muxkit.ErrProtocol", err)
	}

	// Answers, in both versions: only a version 2 AnswerOK carries terms.
	answers := []struct {
		a    muxkit.Answer
		want error
	}{
		{muxkit.AnswerOK, nil},
		{muxkit.AnswerBadPasscode, sdk.ErrBadPasscode},
		{muxkit.AnswerLinkLimit, sdk.ErrLinkLimit},
		{muxkit.AnswerIncompatible, sdk.ErrIncompatible},
		{9, errMine},
	}
	terms := muxkit.Terms{HeartbeatThreshold: 5 * time.Second}
	for _, v := range []byte{muxkit.Version1, muxkit.Version2} {
		hv := h
		hv.Version = v
		for _, tt := range answers {
			var b bytes.Buffer
			if err := (muxkit.Hello{Version: v}).WriteAnswer(&b, tt.a, terms); err != nil {
				t.Fatal(err)
			}
			wantLen := 1
			if v == muxkit.Version2 && tt.a == muxkit.AnswerOK {
				wantLen = 5
			}
			if b.Len() != wantLen {
				t.Errorf("version %d answer %d is %d bytes, want %d", v, tt.a, b.Len(), wantLen)
			}
			got, err := hv.ReadAnswer(&b)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("version %d: ReadAnswer(%d) = %v, want %v", v, tt.a, err, tt.want)
			}
			wantTerms := muxkit.Terms{}
			if err == nil && v == muxkit.Version2 {
				wantTerms = terms
			}
			if got != wantTerms {
				t.Errorf("version %d: ReadAnswer(%d) terms = %+v, want %+v", v, tt.a, got, wantTerms)
			}
			if b.Len() != 0 {
				t.Errorf("version %d: ReadAnswer(%d) left %d bytes unread", v, tt.a, b.Len())
			}
		}
	}
	var b bytes.Buffer
	muxkit.WriteAnswer(&b, muxkit.AnswerOK)
	if b.String() != "\x00" {
		t.Errorf("WriteAnswer (version 1) wrote %q, want one zero byte", b.String())
	}
	// The wire form of a version 2 admission: 0, then 3000 ms big endian;
	// a sub-millisecond threshold rounds up, never to "none".
	b.Reset()
	muxkit.Hello{Version: 2}.WriteAnswer(&b, muxkit.AnswerOK, muxkit.Terms{HeartbeatThreshold: 3 * time.Second})
	if b.String() != "\x00\x00\x00\x0b\xb8" {
		t.Errorf("version 2 AnswerOK with 3s is % x", b.Bytes())
	}
	b.Reset()
	muxkit.Hello{Version: 2}.WriteAnswer(&b, muxkit.AnswerOK, muxkit.Terms{HeartbeatThreshold: time.Microsecond})
	if b.String() != "\x00\x00\x00\x00\x01" {
		t.Errorf("version 2 AnswerOK with 1µs is % x, want 1 ms", b.Bytes())
	}
	_, err := h.ReadAnswer(strings.NewReader(""))
	if !errors.Is(err, io.EOF) || !strings.HasPrefix(err.Error(), "mine: ") {
		t.Errorf("ReadAnswer on a closed connection: %v, want a mine: error wrapping io.EOF", err)
	}
	_, err = h.ReadAnswer(strings.NewReader("\x00\x00"))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "mine: ") {
		t.Errorf("ReadAnswer of a truncated version 2 admission: %v, want a mine: error wrapping io.ErrUnexpectedEOF", err)
	}
}

func TestBeatInterval(t *testing.T) {
	for _, tt := range []struct {
		threshold, interval, want time.Duration
	}{
		{0, 0, sdk.DefaultHeartbeatThreshold / 4},
		{200 * time.Second, 0, 50 * time.Second},
		{200 * time.Second, 5 * time.Second, 5 * time.Second},
		{5 * time.Second, 0, 1250 * time.Millisecond},
		{5 * time.Second, 20 * time.Second, 1250 * time.Millisecond},
		{time.Second, 0, 250 * time.Millisecond},
		{400 * time.Millisecond, 0, 200 * time.Millisecond},
		{time.Millisecond, 0, 10 * time.Millisecond},
		{time.Millisecond, time.Millisecond, time.Millisecond},
	} {
		if got := muxkit.BeatInterval(tt.threshold, tt.interval); got != tt.want {
			t.Errorf("BeatInterval(%v, %v) = %v, want %v", tt.threshold, tt.interval, got, tt.want)
		}
	}
}

// TestDialVersions: refused as incompatible, the dial goes down one
// version at a time to 1; another error, or the end of ctx, stops it.
func TestDialVersions(t *testing.T) {
	errOther := errors.New("connection refused")
	for _, tt := range []struct {
		name     string
		accept   byte // the version the fake connector admits; 0: none
		fail     error
		cancel   bool
		want     []byte
		wantErr  error
		wantSess bool
	}{
		{"first release connector", 1, sdk.ErrIncompatible, false, []byte{muxkit.Version, 3, 2, 1}, nil, true},
		{"version 3 connector", 3, sdk.ErrIncompatible, false, []byte{muxkit.Version, 3}, nil, true},
		{"current connector", muxkit.Version, sdk.ErrIncompatible, false, []byte{muxkit.Version}, nil, true},
		{"other error", 0, errOther, false, []byte{muxkit.Version}, errOther, false},
		{"ctx ended", 0, sdk.ErrIncompatible, true, []byte{muxkit.Version}, sdk.ErrIncompatible, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got []byte
			s, err := muxkit.DialVersions(ctx, nil, func(v byte) (sdk.Session, error) {
				got = append(got, v)
				if tt.cancel {
					cancel()
				}
				if v == tt.accept {
					return muxkit.NewSession("fake", nil), nil
				}
				return nil, fmt.Errorf("dial: %w", tt.fail)
			})
			if !bytes.Equal(got, tt.want) {
				t.Errorf("versions dialled %v, want %v", got, tt.want)
			}
			if (s != nil) != tt.wantSess || (tt.wantErr == nil) != (err == nil) || (err != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("DialVersions = %v, %v; want a session %v, error %v", s, err, tt.wantSess, tt.wantErr)
			}
		})
	}
}
