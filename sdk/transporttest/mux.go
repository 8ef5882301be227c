package transporttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// The helpers below are for multiplexing transports ([sdk.Multiplexer]:
// one link carries every stream, as transports/yamux and transports/quic
// do, usually built on sdk/muxkit), beyond what the suite checks of every
// transport.

// Addr returns the address ep is bound to; it fails tb when ep has no
// Addr method.
func Addr(tb testing.TB, ep sdk.Endpoint) string {
	tb.Helper()
	a, ok := ep.(interface{ Addr() net.Addr })
	if !ok {
		tb.Fatalf("%T has no Addr method", ep)
	}
	return a.Addr().String()
}

// CheckStreamsOneLink is [CheckStreams] (n streams at once, 64 KiB echoed
// and compared on each, Stats while open and after), and checks that all
// of them rode one link: ep's Stats report Links 1.
func CheckStreamsOneLink(tb testing.TB, ctx context.Context, ep sdk.Endpoint, s sdk.Session, n int) {
	tb.Helper()
	CheckStreams(tb, ctx, ep, s, n)
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 1 {
		tb.Errorf("Stats() = %+v after %d streams on one session, want Links 1", st, n)
	}
}

// CheckManyStreams starts an endpoint of tr, dials one session to it and
// runs [CheckStreamsOneLink] with n streams, within a minute.
func CheckManyStreams(t *testing.T, tr sdk.Transport, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ep, s := Setup(t, tr, "", sdk.EndpointConfig{}, sdk.DialConfig{})
	CheckStreamsOneLink(t, ctx, ep, s, n)
}

// TestMultiplexer checks, on transports from mk, what agents of a
// multiplexing transport rely on beyond the suite:
//
//   - ManyStreams: 200 streams at once on one session, one link
//     ([CheckManyStreams]).
//   - SessionEndIsErrClosed: once the endpoint closes an idle link, the
//     agent's pending Accept fails with an error wrapping net.ErrClosed
//     (the agent redials at once).
//   - GoAwayReachesAgent: closing an endpoint whose link still carries a
//     stream fails the agent's pending Accept within 5s (wrapping
//     net.ErrClosed) while the stream goes on carrying bytes both ways.
//
// Pass a network ("udp" for a QUIC transport) as for [Listen].
func TestMultiplexer(t *testing.T, network string, mk func(t *testing.T) sdk.Transport) {
	t.Run("ManyStreams", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ep, s := Setup(t, mk(t), network, sdk.EndpointConfig{}, sdk.DialConfig{})
		CheckStreamsOneLink(t, ctx, ep, s, 200)
	})
	t.Run("SessionEndIsErrClosed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ep, s := Setup(t, mk(t), network, sdk.EndpointConfig{}, sdk.DialConfig{})
		errc := pendingAccept(ctx, s)
		time.Sleep(100 * time.Millisecond)
		ep.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Session.Accept after the connector closed the link: err = %v, want one wrapping net.ErrClosed", err)
			}
		case <-ctx.Done():
			t.Fatal("Session.Accept did not return after the connector closed the link")
		}
	})
	t.Run("GoAwayReachesAgent", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ep, s := Setup(t, mk(t), network, sdk.EndpointConfig{}, sdk.DialConfig{})
		c, a := Pair(t, ctx, ep, s)
		errc := pendingAccept(ctx, s)
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		ep.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("pending Session.Accept after the endpoint closed: err = %v, want one wrapping net.ErrClosed", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("pending Session.Accept took %v to fail", d)
			}
		case <-ctx.Done():
			t.Fatal("pending Session.Accept did not return after the endpoint closed with a live stream")
		}
		Echo(t, c, a, "still here") // the live stream goes on
	})
}

// pendingAccept runs s.Accept in the background and sends its error (a
// stream it returns is closed).
func pendingAccept(ctx context.Context, s sdk.Session) <-chan error {
	errc := make(chan error, 1)
	go func() {
		c, err := s.Accept(ctx)
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	return errc
}

// FirstReleaseHello answers the hello of an agent on rw as a connector of
// the first release (which knew sdk/muxkit hello version 1 only) does: it
// reads the hello, passes its version to record, answers 3 (incompatible)
// and returns false for any other version, and for version 1 reads the
// passcode, answers 0 (OK, whatever the passcode) and returns true. A read
// error returns false. Build a fake old connector with it and check the
// agent's fallback with [CheckHelloFallback].
func FirstReleaseHello(rw io.ReadWriter, record func(version byte)) bool {
	var hdr [7]byte // "IOFY" | version | passcode length
	if _, err := io.ReadFull(rw, hdr[:]); err != nil {
		return false
	}
	record(hdr[4])
	if hdr[4] != muxkit.Version1 {
		rw.Write([]byte{byte(muxkit.AnswerIncompatible)})
		return false
	}
	if _, err := io.ReadFull(rw, make([]byte, binary.BigEndian.Uint16(hdr[5:]))); err != nil {
		return false
	}
	_, err := rw.Write([]byte{byte(muxkit.AnswerOK)})
	return err == nil
}

// CheckHelloFallback checks a session s that an agent's Dial got from a
// fake connector of the first release (see [FirstReleaseHello]) which
// then opened one stream carrying "hi": s.Accept returns that stream with
// the bytes, within ctx, and the hellos the fake saw (read after the
// stream) are every version from [muxkit.Version] down to 1, in order.
func CheckHelloFallback(tb testing.TB, ctx context.Context, s sdk.Session, hellos func() []byte) {
	tb.Helper()
	a, err := s.Accept(ctx)
	if err != nil {
		tb.Fatalf("Accept from a version 1 connector: %v", err)
	}
	defer a.Close()
	buf := make([]byte, 2)
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "hi" {
		tb.Fatalf("stream from a version 1 connector: %q, %v", buf, err)
	}
	var want []byte
	for v := muxkit.Version; v >= muxkit.Version1; v-- {
		want = append(want, v)
	}
	if got := hellos(); !bytes.Equal(got, want) {
		tb.Errorf("hello versions sent: %v, want %v (the newest, then each older one)", got, want)
	}
}
