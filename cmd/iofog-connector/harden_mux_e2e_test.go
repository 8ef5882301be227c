package main

// End-to-end tests of agent liveness on the multiplexing transports and
// through transport plugins (issue 9, items 4 and 6): the real daemon, the
// real agent binary (and, for websocket, the real example plugin in both),
// on loopback. A frozen agent (SIGSTOP: its kernel still ACKs TCP, so only
// missing application-level beats reveal it) must have its bound public
// clients closed within the mapping's heartbeat threshold; a live agent,
// told the threshold by the handshake, must never be dropped. Helpers are
// prefixed hme2e; the process, echo and trust helpers of
// plugin_e2e_test.go (pe2e*) and mux_e2e_test.go (me2e*) are reused.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hme2eTransports are the transports this file covers: the two built-in
// multiplexing ones and the example plugin (one connection per stream).
var hme2eTransports = []string{"yamux", "quic", "websocket"}

// hme2eAgentArgs builds the argument list of `iofog-connector agent public`
// for every test of this file, in one place: flags that every agent of a
// dev-mode daemon needs (such as an explicit plaintext flag) go here.
func hme2eAgentArgs(connector, passcode, local, transport string, extra ...string) []string {
	args := e2eAgentArgs("public", connector, passcode,
		"--local", local,
		"--transport", transport,
		"--pool", "1",
	)
	if !slices.Contains(extra, "--ca") {
		args = append(args, "--plaintext") // a dev-mode daemon
	}
	return append(args, extra...)
}

// hme2eWorld is one daemon, one public mapping on one transport and our
// agent serving an echo service through it.
type hme2eWorld struct {
	d      *e2eDaemon
	m      e2eMapping
	agent  *e2eProc
	public string
}

// hme2eStart starts a daemon (loading the plugin for websocket), adds a
// public mapping with threshold on transport and starts our agent, then
// waits for a checksummed round trip. SIGCONT is sent to the agent at
// clean-up, before it is stopped, in case a test left it frozen.
func hme2eStart(ctx context.Context, t *testing.T, transport string, threshold time.Duration) *hme2eWorld {
	t.Helper()
	settings := map[string]any{}
	var extra []string
	if transport == "websocket" {
		dir := e2ePluginDir(t)
		settings["plugins"] = map[string]any{"dir": dir}
		extra = append(extra, "--plugin-dir", dir)
	}
	d := e2eStartDaemon(t, e2eOptions{Ports: 4, Settings: settings})
	m := d.AddMapping(t, fmt.Sprintf(`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":%d,"transport":%q}`, threshold.Milliseconds(), transport))
	extra = append(extra, me2eTrustArgs(t, transport, d.DataDir)...)
	echo := e2eEcho(t)
	agent := e2eStart(t, d.Bin, hme2eAgentArgs(d.Addr(m.Port1), m.Passcode1, echo, transport, extra...)...)
	t.Cleanup(func() { syscall.Kill(agent.cmd.Process.Pid, syscall.SIGCONT) })
	w := &hme2eWorld{d: d, m: m, agent: agent, public: d.Addr(m.Port2)}
	if err := pe2eWait(ctx, "first round trip", func() error {
		if err := w.alive(); err != nil {
			return err
		}
		return pe2eRoundTrip(w.public, 64<<10, false, nil)
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *hme2eWorld) alive() error {
	switch {
	case !w.d.Running():
		return errFatal("the daemon exited")
	case !w.agent.alive():
		return errFatal("the agent exited:\n" + w.agent.out.String())
	}
	return nil
}

// status returns the mapping's links and relayed connections.
func (w *hme2eWorld) status(ctx context.Context) (links, conns int, err error) {
	code, st, err := w.d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {w.m.ID}})
	if err != nil {
		return 0, 0, err
	}
	if code != 200 {
		return 0, 0, fmt.Errorf("status answered %d: %v", code, st)
	}
	l, _ := st["links"].(float64)
	c, _ := st["connections"].(float64)
	return int(l), int(c), nil
}

// hme2eBound is a public client bound to an agent stream.
type hme2eBound struct {
	c     net.Conn
	ended chan time.Time // gets the instant its read side ended
	err   atomic.Value   // the error that ended it (nil for io.EOF)
	moved atomic.Int64   // bytes read back
}

// hme2eBind connects a public client and proves it is bound (an echo round
// trip). With busy, it then writes continuously (16 KiB every 10 ms) and
// reads the echo back, so that it is mid-transfer when the agent freezes;
// otherwise it stays idle and only reads.
func hme2eBind(t *testing.T, public string, busy bool) *hme2eBound {
	t.Helper()
	c, err := net.DialTimeout("tcp", public, 5*time.Second)
	if err != nil {
		t.Fatalf("public client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	hello := []byte("hello through the agent")
	if _, err := c.Write(hello); err != nil {
		t.Fatalf("public client write: %v", err)
	}
	got := make([]byte, len(hello))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(hello) {
		t.Fatalf("public client echo: %q, %v", got, err)
	}
	c.SetDeadline(time.Time{})
	b := &hme2eBound{c: c, ended: make(chan time.Time, 1)}
	if busy {
		go func() {
			buf := make([]byte, 16<<10)
			for {
				c.SetWriteDeadline(time.Now().Add(time.Minute))
				if _, err := c.Write(buf); err != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			b.moved.Add(int64(n))
			if err != nil {
				if !errors.Is(err, io.EOF) {
					b.err.Store(err)
				}
				b.ended <- time.Now()
				return
			}
		}
	}()
	return b
}

// TestHardenMuxFrozenAgentClosesBoundClients: with a 3 s threshold, one
// idle and one mid-transfer public client bound to our agent; the agent is
// frozen with SIGSTOP; both clients must be closed by the connector well
// within 3 × threshold, and every relay must end (status connections 0),
// not only be half-closed. After SIGCONT the agent serves again.
//
// For websocket the agent runs its plugin as a child process: in
// "websocket" only the agent process is stopped, and its plugin, which
// would beat on for it, must notice that its host stopped; in
// "websocket-and-plugin" both are stopped and the connector's own
// threshold decides.
func TestHardenMuxFrozenAgentClosesBoundClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	const threshold = 3 * time.Second
	for _, tc := range []struct{ name, transport string }{
		{"yamux", "yamux"},
		{"quic", "quic"},
		{"websocket", "websocket"},
		{"websocket-and-plugin", "websocket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			w := hme2eStart(ctx, t, tc.transport, threshold)
			idle := hme2eBind(t, w.public, false)
			busy := hme2eBind(t, w.public, true)
			// The busy client is moving bytes before the freeze.
			for busy.moved.Load() < 64<<10 {
				select {
				case <-busy.ended:
					t.Fatalf("the busy client ended before the freeze: %v", busy.err.Load())
				case <-ctx.Done():
					t.Fatal("the busy client moved no bytes")
				case <-time.After(20 * time.Millisecond):
				}
			}
			if _, conns, err := w.status(ctx); err != nil || conns != 2 {
				t.Fatalf("status before the freeze: connections %d, %v; want 2", conns, err)
			}
			pids := []int{w.agent.cmd.Process.Pid}
			if tc.name == "websocket-and-plugin" {
				plugins := pe2eChildren(pids[0], "iofog-transport-websocket")
				if len(plugins) != 1 {
					t.Fatalf("the agent has %d websocket plugin children (%v), want 1", len(plugins), plugins)
				}
				pids = append(pids, plugins...)
			}
			for _, pid := range pids {
				t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			limit := 3 * threshold
			for _, c := range []struct {
				name string
				b    *hme2eBound
			}{{"idle", idle}, {"mid-transfer", busy}} {
				select {
				case at := <-c.b.ended:
					t.Logf("%s: %s client closed %v after SIGSTOP (threshold %v; read ended with %v)", tc.name, c.name, at.Sub(start).Round(time.Millisecond), threshold, c.b.err.Load())
					if d := at.Sub(start); d > limit {
						t.Errorf("%s client closed only %v after the agent froze, want < %v", c.name, d, limit)
					}
				case <-time.After(limit - time.Since(start)):
					t.Errorf("%s client still open %v after the agent froze (threshold %v)", c.name, time.Since(start).Round(time.Millisecond), threshold)
				}
			}
			// Every relay ended: none is left half-open waiting for the
			// client.
			var conns int
			for {
				var err error
				_, conns, err = w.status(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if conns == 0 || time.Since(start) > limit {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if conns != 0 {
				t.Errorf("status shows %d relayed connections %v after the agent froze, want 0", conns, time.Since(start).Round(time.Millisecond))
			} else {
				t.Logf("%s: every relay ended %v after SIGSTOP", tc.name, time.Since(start).Round(time.Millisecond))
			}
			for _, pid := range pids {
				if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
			resumed := time.Now()
			if err := pe2eWait(ctx, "round trip after SIGCONT", func() error {
				if err := w.alive(); err != nil {
					return err
				}
				return pe2eRoundTrip(w.public, 64<<10, false, nil)
			}); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: the agent served again %v after SIGCONT", tc.name, time.Since(resumed).Round(time.Millisecond))
		})
	}
}

// TestHardenMuxNoFlapAtShortThreshold: our agent, told the threshold by
// the handshake, is never dropped while alive: at 5 s (our agent's old
// fixed beat interval) for 30 s, and at 1 s (the smallest threshold a
// mapping may have) for 10 s. Status shows one link at every sample (each
// fall below one is counted as a drop), a client bound at the start still
// echoes at the end (a dropped session would have closed it), and a round
// trip every second succeeds.
func TestHardenMuxNoFlapAtShortThreshold(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	for _, transport := range hme2eTransports {
		for _, tc := range []struct{ threshold, run time.Duration }{
			{5 * time.Second, 30 * time.Second},
			{time.Second, 10 * time.Second},
		} {
			t.Run(fmt.Sprintf("%s/%v", transport, tc.threshold), func(t *testing.T) {
				t.Parallel()
				hme2eNoFlap(t, transport, tc.threshold, tc.run)
			})
		}
	}
}

func hme2eNoFlap(t *testing.T, transport string, threshold, run time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := hme2eStart(ctx, t, transport, threshold)
	bound := hme2eBind(t, w.public, false)
	drops, samples, failed := 0, 0, 0
	lastLinks := 1
	begin := time.Now()
	for time.Since(begin) < run {
		links, _, err := w.status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		samples++
		if links < 1 && lastLinks >= 1 {
			drops++
		}
		lastLinks = links
		if err := pe2eRoundTrip(w.public, 4<<10, false, nil); err != nil {
			failed++
			t.Logf("round trip %v into the run: %v", time.Since(begin).Round(time.Millisecond), err)
		}
		select {
		case at := <-bound.ended:
			t.Fatalf("the bound client was closed %v into the run (%v): the agent's session dropped", at.Sub(begin).Round(time.Millisecond), bound.err.Load())
		case <-time.After(time.Second):
		}
	}
	t.Logf("%s at %v: %d status samples over %v, %d session drops, %d failed round trips", transport, threshold, samples, run, drops, failed)
	if drops != 0 || failed != 0 {
		t.Errorf("%d session drops and %d failed round trips in %v at threshold %v, want none", drops, failed, run, threshold)
	}
	msg := []byte("still bound after " + run.String())
	bound.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := bound.c.Write(msg); err != nil {
		t.Fatalf("the client bound at the start cannot write: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for bound.moved.Load() < int64(len(msg)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := bound.moved.Load(); got < int64(len(msg)) {
		t.Errorf("the client bound at the start got %d bytes of its echo back, want %d", got, len(msg))
	}
}
