package main

// End-to-end tests of the mapping's maxconnections (issue 10): the real
// binary as daemon and agents, on every built-in transport and the
// example websocket plugin, show the same limit. Helpers are prefixed le2e.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// le2eWait is the daemon's public-wait-timeout in these tests.
const le2eWait = 12 * time.Second

// le2eClient is a client of a relayed echo service: it sends one byte
// and learns whether and when it came back.
type le2eClient struct {
	c      net.Conn
	echoed chan struct{} // closed when the echo arrived
	ended  chan error    // gets the read error if the connection ends first
}

// le2eDial connects to addr, sends one byte and watches for its echo.
func le2eDial(t *testing.T, addr string) *le2eClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &le2eClient{c: c, echoed: make(chan struct{}), ended: make(chan error, 1)}
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	go func() {
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			cl.ended <- err
			return
		}
		close(cl.echoed)
	}()
	return cl
}

// relayed reports whether the echo came within d.
func (cl *le2eClient) relayed(d time.Duration) bool {
	select {
	case <-cl.echoed:
		return true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-cl.echoed:
		return true
	case <-t.C:
		return false
	}
}

// le2eCount waits until n of cls are relayed (at most d), then grace
// more for any beyond n, and returns the relayed ones and the others.
func le2eCount(cls []*le2eClient, n int, d, grace time.Duration) (relayed, other []*le2eClient) {
	deadline := time.Now().Add(d)
	count := func() int {
		k := 0
		for _, cl := range cls {
			if cl.relayed(0) {
				k++
			}
		}
		return k
	}
	for count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(grace)
	for _, cl := range cls {
		if cl.relayed(0) {
			relayed = append(relayed, cl)
		} else {
			other = append(other, cl)
		}
	}
	return relayed, other
}

// le2eStatus returns the relayed connections open now and the refused
// count from the REST status of mapping id.
func le2eStatus(ctx context.Context, d *e2eDaemon, id string) (active, refused float64, err error) {
	code, st, err := d.Post(ctx, "/api/v2/status", map[string][]string{"mappingid": {id}})
	if err != nil || code != 200 {
		return 0, 0, fmt.Errorf("status %s: %d %v", id, code, err)
	}
	active, _ = st["connections"].(float64)
	refused, _ = st["refusedConnections"].(float64)
	return active, refused, nil
}

func le2eEventually(t *testing.T, what string, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLimitsE2E: on tcp, yamux, quic and the websocket plugin alike, a
// public mapping at maxconnections 2 relays exactly 2 of 5 concurrent
// clients at once, however many links or sessions its agent holds; the
// others wait and are relayed as relayed ones leave; a client that finds
// the limit held for the whole public-wait-timeout is closed and counted
// as refused. A private mapping at maxconnectionsport1/2 1 relays one
// client at a time.
func TestLimitsE2E(t *testing.T) {
	e2eWatchdog(t, 6*time.Minute)
	pluginDir := e2ePluginDir(t)
	d := e2eStartDaemon(t, e2eOptions{Ports: 20, Settings: map[string]any{
		"plugins":             map[string]any{"dir": pluginDir},
		"public-wait-timeout": le2eWait.String(),
	}})
	echo := e2eEcho(t)
	for _, tr := range []string{"tcp", "yamux", "quic", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			// quic's identity exists once a quic mapping was listened.
			trust := func(t *testing.T) []string {
				if tr == "quic" {
					return append(me2eTrustArgs(t, "quic", d.DataDir), "--transport", tr)
				}
				return []string{"--plaintext", "--transport", tr, "--plugin-dir", pluginDir}
			}
			t.Run("public", func(t *testing.T) { le2ePublic(t, d, tr, echo, trust) })
			t.Run("private", func(t *testing.T) { le2ePrivate(t, d, tr, echo, trust) })
		})
	}
}

func le2ePublic(t *testing.T, d *e2eDaemon, tr, echo string, trustArgs func(*testing.T) []string) {
	ctx := context.Background()
	const limit, clients = 2, 5
	m := d.AddMapping(t, fmt.Sprintf(`{"type":"public","maxconnections":%d,"heartbeatabsencethreshold":200000,"transport":%q}`, limit, tr))
	trust := trustArgs(t)
	// A pool larger than the limit: the limit is the connector's, not
	// the number of links.
	agent := e2eStart(t, d.Bin, e2eAgentArgs("public", d.Addr(m.Port1), m.Passcode1, append([]string{"--local", echo, "--pool", "4"}, trust...)...)...)
	public := d.Addr(m.Port2)
	le2eEventually(t, "first round trip", 60*time.Second, func() error {
		if !agent.alive() {
			return errors.New("agent exited:\n" + agent.out.String())
		}
		c, err := net.DialTimeout("tcp", public, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		cl := &le2eClient{c: c, echoed: make(chan struct{}), ended: make(chan error, 1)}
		c.Write([]byte{'x'})
		go func() {
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				cl.ended <- err
				return
			}
			close(cl.echoed)
		}()
		if !cl.relayed(le2eWait + time.Second) {
			return errors.New("no echo")
		}
		return nil
	})
	le2eEventually(t, "probe's relay ended", 10*time.Second, func() error {
		if a, _, err := le2eStatus(ctx, d, m.ID); err != nil || a != 0 {
			return fmt.Errorf("connections %v, err %v", a, err)
		}
		return nil
	})

	var cls []*le2eClient
	for range clients {
		cls = append(cls, le2eDial(t, public))
	}
	relayed, waiting := le2eCount(cls, limit, 10*time.Second, time.Second)
	if len(relayed) != limit {
		t.Fatalf("%s: %d of %d concurrent clients relayed at maxconnections %d, want exactly %d", tr, len(relayed), clients, limit, limit)
	}
	if a, _, err := le2eStatus(ctx, d, m.ID); err != nil || a != limit {
		t.Errorf("status connections = %v (err %v), want %d", a, err, limit)
	}
	// As relayed clients leave, waiting ones are relayed, never more than
	// the limit at once.
	for _, cl := range relayed {
		cl.c.Close()
	}
	next, still := le2eCount(waiting, limit, le2eWait/3, 500*time.Millisecond)
	if len(next) != limit || len(still) != clients-2*limit {
		t.Fatalf("%s: after 2 left, %d more relayed and %d still waiting; want %d and %d", tr, len(next), len(still), limit, clients-2*limit)
	}
	for _, cl := range next {
		cl.c.Close()
	}
	if last, _ := le2eCount(still, len(still), le2eWait/3, 0); len(last) != len(still) {
		t.Fatalf("%s: the last waiting client was not relayed once others left", tr)
	}
	for _, cl := range still {
		cl.c.Close()
	}

	// At the limit for the whole wait timeout: refused.
	hold := []*le2eClient{le2eDial(t, public), le2eDial(t, public)}
	if r, _ := le2eCount(hold, limit, 10*time.Second, 0); len(r) != limit {
		t.Fatalf("%s: %d of %d holders relayed", tr, len(r), limit)
	}
	_, refusedBefore, _ := le2eStatus(ctx, d, m.ID)
	over := le2eDial(t, public)
	start := time.Now()
	select {
	case <-over.echoed:
		t.Fatalf("%s: a third client was relayed at maxconnections %d", tr, limit)
	case err := <-over.ended:
		if took := time.Since(start); took < le2eWait/2 {
			t.Errorf("%s: client over the limit closed after %v, before the public wait timeout %v", tr, took, le2eWait)
		}
		t.Logf("%s: client over the limit closed after %v: %v", tr, time.Since(start).Round(time.Millisecond), err)
	case <-time.After(le2eWait + 20*time.Second):
		t.Fatalf("%s: client over the limit neither relayed nor closed", tr)
	}
	le2eEventually(t, "refusal counted", 10*time.Second, func() error {
		if _, r, err := le2eStatus(ctx, d, m.ID); err != nil || r != refusedBefore+1 {
			return fmt.Errorf("refused %v (before %v), err %v", r, refusedBefore, err)
		}
		return nil
	})
	for _, cl := range hold {
		if !cl.relayed(0) {
			t.Errorf("%s: a holder lost its relay", tr)
		}
		cl.c.Close()
	}
	agent.stop(t)
}

func le2ePrivate(t *testing.T, d *e2eDaemon, tr, echo string, trustArgs func(*testing.T) []string) {
	m := d.AddMapping(t, fmt.Sprintf(`{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":200000,"transport":%q}`, tr))
	trust := trustArgs(t)
	a := e2eStart(t, d.Bin, e2eAgentArgs("private", d.Addr(m.Port1), m.Passcode1, append([]string{"--local", echo}, trust...)...)...)
	listen := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	b := e2eStart(t, d.Bin, e2eAgentArgs("private", d.Addr(m.Port2), m.Passcode2, append([]string{"--listen", listen}, trust...)...)...)
	var first *le2eClient
	le2eEventually(t, "first private round trip", 60*time.Second, func() error {
		if !a.alive() || !b.alive() {
			return fmt.Errorf("an agent exited:\nA:\n%s\nB:\n%s", a.out.String(), b.out.String())
		}
		c, err := net.DialTimeout("tcp", listen, 2*time.Second)
		if err != nil {
			return err
		}
		cl := &le2eClient{c: c, echoed: make(chan struct{}), ended: make(chan error, 1)}
		c.Write([]byte{'x'})
		go func() {
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				cl.ended <- err
				return
			}
			close(cl.echoed)
		}()
		if !cl.relayed(5 * time.Second) {
			c.Close()
			return errors.New("no echo")
		}
		first = cl
		return nil
	})
	defer first.c.Close()
	// While the first is relayed, a second client is not: its stream is
	// refused by the connector (the agent closes it), or held back by the
	// transport until the first ends.
	second := le2eDial(t, listen)
	if second.relayed(3 * time.Second) {
		t.Fatalf("%s: a second private client was relayed at maxconnectionsport1/2 1", tr)
	}
	if !first.relayed(0) {
		t.Fatalf("%s: the first private client lost its relay", tr)
	}
	first.c.Close()
	second.c.Close()
	le2eEventually(t, "a new client relayed once the first left", 30*time.Second, func() error {
		cl := le2eDial(t, listen)
		defer cl.c.Close()
		if !cl.relayed(3 * time.Second) {
			return errors.New("not relayed")
		}
		return nil
	})
	a.stop(t)
	b.stop(t)
}
