package muxkit_test

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// TestAdmit drives Endpoint.Admit over net.Pipe as an agent would: a good
// hello is admitted with the terms and a reserved place, a wrong passcode
// and a full endpoint are refused with their answers and counted, bytes
// that are no hello fail and are counted, and a closed endpoint admits
// nobody and counts nothing.
func TestAdmit(t *testing.T) {
	terms := muxkit.Terms{HeartbeatThreshold: 3 * time.Second}
	hs := muxkit.Handshake{Name: "test"}
	run := func(ep *muxkit.Endpoint, send func(net.Conn), read func(net.Conn)) (muxkit.Hello, muxkit.Answer, error) {
		c, a := net.Pipe()
		defer c.Close()
		defer a.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.SetDeadline(time.Now().Add(5 * time.Second))
			send(a)
			if read != nil {
				read(a)
			}
		}()
		h, ans, err := ep.Admit(c, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, muxkit.AdmitConfig{
			Handshake: hs, Passcode: "pw", Terms: terms, Timeout: 2 * time.Second,
		})
		c.Close()
		<-done
		return h, ans, err
	}
	hello := func(pass string) func(net.Conn) {
		return func(a net.Conn) { hs.WriteHello(a, pass) }
	}

	ep := muxkit.NewEndpoint(muxkit.EndpointConfig{MaxLinks: 1})
	defer ep.Close()
	var got muxkit.Terms
	var gotErr error
	h, ans, err := run(ep, hello("pw"), func(a net.Conn) { got, gotErr = hs.ReadAnswer(a) })
	if err != nil || ans != muxkit.AnswerOK || h.Version != muxkit.Version {
		t.Fatalf("good hello: %v, %d, %v; want version %d, AnswerOK, nil", h, ans, err, muxkit.Version)
	}
	if gotErr != nil || got != terms {
		t.Errorf("agent read %+v, %v; want %+v", got, gotErr, terms)
	}
	// The place is reserved: the next good hello finds the endpoint full.
	_, ans, err = run(ep, hello("pw"), func(a net.Conn) { _, gotErr = hs.ReadAnswer(a) })
	if ans != muxkit.AnswerLinkLimit || !errors.Is(err, sdk.ErrLinkLimit) || !errors.Is(gotErr, sdk.ErrLinkLimit) {
		t.Errorf("hello at the limit: %d, %v (agent: %v); want AnswerLinkLimit, sdk.ErrLinkLimit", ans, err, gotErr)
	}
	ep.Unreserve()
	_, ans, err = run(ep, hello("nope"), func(a net.Conn) { _, gotErr = hs.ReadAnswer(a) })
	if ans != muxkit.AnswerBadPasscode || !errors.Is(err, sdk.ErrBadPasscode) || !errors.Is(gotErr, sdk.ErrBadPasscode) {
		t.Errorf("wrong passcode: %d, %v (agent: %v); want AnswerBadPasscode, sdk.ErrBadPasscode", ans, err, gotErr)
	}
	_, _, err = run(ep, func(a net.Conn) { a.Write([]byte("GET / HTTP/1.1\r\n")) }, nil)
	if !errors.Is(err, muxkit.ErrProtocol) {
		t.Errorf("no hello: %v, want muxkit.ErrProtocol", err)
	}
	if st := ep.Stats(); st.Failed != 3 {
		t.Errorf("Stats().Failed = %d after three failed handshakes, want 3 (%v)", st.Failed, st.FailedByReason)
	}

	// A silent agent fails at the timeout.
	start := time.Now()
	_, _, err = run(ep, func(net.Conn) { time.Sleep(2500 * time.Millisecond) }, nil)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("silent agent: %v after %v, want an error after the 2s timeout", err, time.Since(start))
	}

	ep.Close()
	_, _, err = run(ep, hello("pw"), func(a net.Conn) { var b bytes.Buffer; b.ReadFrom(a) })
	if !errors.Is(err, sdk.ErrClosed) {
		t.Errorf("good hello to a closed endpoint: %v, want sdk.ErrClosed", err)
	}
}
