package websocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// These tests pin the wire format byte for byte against scripted peers
// that speak it as the previous release did (before the transport moved
// onto sdk/streamkit): its agents dial control kind 'C' and read only
// 'P' requests; its connectors close a control connection of kind 'c'
// unanswered.

var testOrigin = sdk.Origin{
	Client: netip.MustParseAddrPort("127.0.0.2:40123"),
	Local:  netip.MustParseAddrPort("[::1]:7001"),
	Proxy:  sdk.ProxyV2,
}

// readExactly reads len(want) bytes from c and fails unless they are want.
func readExactly(t *testing.T, c net.Conn, want []byte, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: read %q, %v; want %q", what, got, err, want)
	}
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestOlderAgent: an agent of the previous release (control kind 'C')
// against this connector is answered and told the threshold exactly as
// before, its beats are echoed, it is sent 'P' (never 'Q', even when
// Open has an origin), and its stream carries bytes both ways.
func TestOlderAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, addr := transporttest.Listen(t, New(), "tcp", sdk.EndpointConfig{HeartbeatThreshold: 2 * time.Second})
	cfg := sdk.DialConfig{Addr: addr, Passcode: "pw"}
	ctrl, err := New().dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	write(t, ctrl, []byte("REF1C\x02pw"))
	reply := make([]byte, 9)
	ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(ctrl, reply); err != nil || reply[0] != 0 {
		t.Fatalf("answer %q, %v; want status 0 and the session id", reply, err)
	}
	readExactly(t, ctrl, []byte("T2000;"), "threshold message")
	write(t, ctrl, []byte("B"))
	readExactly(t, ctrl, []byte("B"), "beat echo")

	type res struct {
		c   net.Conn
		err error
	}
	opened := make(chan res, 1)
	go func() {
		c, err := ep.Open(sdk.WithOrigin(ctx, testOrigin))
		opened <- res{c, err}
	}()
	req := make([]byte, 9)
	ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(ctrl, req); err != nil || req[0] != 'P' {
		t.Fatalf("stream request %q, %v; want 'P' and an id", req, err)
	}
	data, err := New().dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	hdr := append([]byte("REF1D\x02pw"), reply[1:]...)
	write(t, data, append(hdr, req[1:]...))
	readExactly(t, data, []byte{0}, "stream answer")
	r := <-opened
	if r.err != nil {
		t.Fatalf("Open: %v", r.err)
	}
	defer r.c.Close()
	write(t, data, []byte("from the old agent"))
	readExactly(t, r.c, []byte("from the old agent"), "connector side")
	write(t, r.c, []byte("to the old agent"))
	readExactly(t, data, []byte("to the old agent"), "agent side")
}

// TestOlderConnector: against a connector of the previous release, the
// agent's 'c' control connection is closed unanswered, and the agent
// dials again with 'C' (exactly those bytes); its idle links ('I') are
// closed unanswered too and it keeps none; it takes the 'T' and 'P'
// messages as before, dials the stream with the session and stream ids,
// and its stream carries bytes and reports no origin.
func TestOlderConnector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := New().listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type dialled struct {
		s   sdk.Session
		err error
	}
	dials := make(chan dialled, 1)
	go func() {
		s, err := New().Dial(ctx, sdk.DialConfig{Addr: ln.Addr().String(), Passcode: "pw"})
		dials <- dialled{s, err}
	}()
	accept := func() net.Conn {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := accept()
	readExactly(t, first, []byte("REF1c\x02pw"), "first control header")
	first.Close() // an older connector does not know 'c'
	ctrl := accept()
	defer ctrl.Close()
	readExactly(t, ctrl, []byte("REF1C\x02pw"), "second control header")
	write(t, ctrl, binary.BigEndian.AppendUint64([]byte{0}, 42))
	write(t, ctrl, []byte("T3000;"))
	d := <-dials
	if d.err != nil {
		t.Fatalf("Dial against an older connector: %v", d.err)
	}
	defer d.s.Close()
	// The agent dials its idle links ('I', no ids), which an older
	// connector closes unanswered; it then dials none again.
	for range 2 {
		idle := accept()
		readExactly(t, idle, []byte("REF1I\x02pw"), "idle link header")
		idle.Close()
	}
	write(t, ctrl, binary.BigEndian.AppendUint64([]byte("P"), 7))
	data := accept()
	defer data.Close()
	want := append([]byte("REF1D\x02pw"), binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 42), 7)...)
	readExactly(t, data, want, "stream header")
	write(t, data, []byte{0})
	a, err := d.s.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer a.Close()
	if o, ok := a.(sdk.OriginStream).Origin(); ok {
		t.Fatalf("origin %+v from an older connector", o)
	}
	write(t, data, []byte("hi"))
	readExactly(t, a, []byte("hi"), "agent side")
	write(t, a, []byte("back"))
	readExactly(t, data, []byte("back"), "connector side")
}

// TestAbortIsNotEOF: a stream closed reads io.EOF at its peer; a stream
// aborted (as a silent session's are) reads io.ErrUnexpectedEOF.
func TestAbortIsNotEOF(t *testing.T) {
	ep, s := transporttest.Setup(t, New(), "tcp", sdk.EndpointConfig{}, sdk.DialConfig{})
	for _, tc := range []struct {
		name string
		end  func(net.Conn) error
		want error
	}{
		{"Close", net.Conn.Close, io.EOF},
		{"Abort", func(c net.Conn) error { return c.(interface{ Abort() error }).Abort() }, io.ErrUnexpectedEOF},
	} {
		c, a := transporttest.Pair(t, t.Context(), ep, s)
		write(t, a, []byte("bytes"))
		tc.end(a)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err == nil {
			err = io.EOF
		}
		if string(got) != "bytes" || err != tc.want {
			t.Errorf("%s: the peer read %q then %v, want the bytes then %v", tc.name, got, err, tc.want)
		}
	}
}
