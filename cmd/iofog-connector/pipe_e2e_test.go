package main

// End-to-end tests of the built-in tcp transport (issue 3) with the real
// binaries on loopback: the daemon (`start`), our agent (`agent public`,
// `agent private`) and a legacy-protocol agent written here from the
// contract (docs/ioFog-contract.md, "Legacy agent protocol"). Helpers are prefixed te2e.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// te2eAgent starts `agent MODE` against port with passcode; without
// --ca in extra it speaks plaintext (--plaintext) to a dev-mode daemon.
func te2eAgent(t *testing.T, bin, mode string, port int, passcode string, extra ...string) *e2eProc {
	t.Helper()
	args := e2eAgentArgs(mode, "127.0.0.1:"+strconv.Itoa(port), passcode, append([]string{"--log-level", "debug"}, extra...)...)
	if !slices.Contains(extra, "--ca") {
		args = append(args, "--plaintext")
	}
	return e2eStart(t, bin, args...)
}

// te2eLegacyDial is a legacy agent's link set-up: the passcode in one
// write, then exactly AUTHORIZED, or an error.
func te2eLegacyDial(addr, passcode string, tc *tls.Config) (net.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := raw
	if tc != nil {
		c = tls.Client(raw, tc)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(passcode)); err != nil {
		c.Close()
		return nil, err
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "AUTHORIZED" {
		c.Close()
		return nil, fmt.Errorf("not authorized (read %q): %v", got, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// te2eLegacyServe relays one legacy link to local the contract's way:
// reads that are exactly BEAT or BEATBEAT are dropped, the local service
// is dialled when the first payload arrives, BEAT is written every beat
// (in a write of its own) while idle. It returns when the link ends.
func te2eLegacyServe(c net.Conn, local string, beat time.Duration) {
	defer c.Close()
	var (
		wmu     sync.Mutex
		relying bool
	)
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := c.Write(b)
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(beat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// Beats paused while relaying: a BEAT read together with
				// payload cannot be told from data (legacy protocol limit).
				wmu.Lock()
				r := relying
				wmu.Unlock()
				if !r && write([]byte("BEAT")) != nil {
					return
				}
			}
		}
	}()
	var lc net.Conn
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 && string(buf[:n]) != "BEAT" && string(buf[:n]) != "BEATBEAT" {
			if lc == nil {
				wmu.Lock()
				relying = true
				wmu.Unlock()
				if lc, err = net.Dial("tcp", local); err != nil {
					return
				}
				defer lc.Close()
				go func() {
					io.Copy(writerFunc(write), lc)
					c.Close()
				}()
			}
			if _, werr := lc.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// te2eExact writes size random bytes to c and reads exactly size back,
// comparing them; no half-close (legacy agents carry none).
func te2eExact(c net.Conn, size int) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + size)
	}
	werr := make(chan error, 1)
	go func() { _, err := c.Write(data); werr <- err }()
	got := make([]byte, size)
	_, err := io.ReadFull(c, got)
	if e := <-werr; e != nil {
		return e
	}
	if err != nil {
		return err
	}
	if string(got) != string(data) {
		return errors.New("echo differs")
	}
	return nil
}

// te2eReadEnds waits for c to end (EOF or error) within d.
func te2eReadEnds(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c) // echoed bytes, then EOF or reset
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %v", d)
	}
	return nil
}

func TestPipeE2E(t *testing.T) {
	e2eWatchdog(t, 4*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 40})
	bin := d.Bin
	echo := e2eEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("OurAgent50Clients", func(t *testing.T) {
		m := d.AddMapping(t, e2ePublicBody)
		agent := te2eAgent(t, bin, "public", m.Port1, m.Passcode1, "--local", echo, "--pool", "16")
		public := d.Addr(m.Port2)
		if err := pe2eWait(ctx, "first round trip", func() error {
			if !agent.alive() {
				return errors.New("agent exited")
			}
			return pe2eRoundTrip(public, 1024, false, nil)
		}); err != nil {
			t.Fatal(err)
		}
		const clients, size = 50, 1 << 20
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := pe2eRoundTrip(public, size, false, nil); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("ServerSpeaksFirst", func(t *testing.T) {
		const banner = "SSH-2.0-OpenSSH_9.6 iofog-test\r\n"
		svc := transporttest.Serve(t, func(c net.Conn) {
			c.Write([]byte(banner))
			io.Copy(io.Discard, c)
		})
		m := d.AddMapping(t, e2ePublicBody)
		te2eAgent(t, bin, "public", m.Port1, m.Passcode1, "--local", svc, "--pool", "2")
		if err := pe2eWait(ctx, "banner through the public port", func() error {
			c, err := net.DialTimeout("tcp", d.Addr(m.Port2), 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(banner))
			if _, err := io.ReadFull(c, got); err != nil {
				return fmt.Errorf("the client sent nothing and read %q: %w", got, err)
			}
			if string(got) != banner {
				return fmt.Errorf("banner %q, want %q", got, banner)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("LegacyAgentPublic", func(t *testing.T) {
		m := d.AddMapping(t, e2ePublicBody)
		for range 4 {
			c, err := te2eLegacyDial(d.Addr(m.Port1), m.Passcode1, nil)
			if err != nil {
				t.Fatalf("legacy link: %v", err)
			}
			go te2eLegacyServe(c, echo, 200*time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // idle links beat, are answered, are not forwarded
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", d.Addr(m.Port2))
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				if err := te2eExact(c, 256<<10); err != nil {
					errs <- fmt.Errorf("client %d through a legacy link: %w", i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("WrongPasscode", func(t *testing.T) {
		m := d.AddMapping(t, e2ePublicBody)
		if c, err := te2eLegacyDial(d.Addr(m.Port1), "not-"+m.Passcode1, nil); err == nil {
			c.Close()
			t.Error("a legacy agent with a wrong passcode was AUTHORIZED")
		}
		agent := te2eAgent(t, bin, "public", m.Port1, "not-"+m.Passcode1, "--local", echo, "--pool", "1")
		if err := pe2eWait(ctx, "agent logs the refusal", func() error {
			if !strings.Contains(agent.out.String(), "passcode refused") {
				return errors.New("no refusal logged yet")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// No public client gets through.
		c, err := net.Dial("tcp", d.Addr(m.Port2))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hello?"))
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if n, _ := io.Copy(io.Discard, c); n != 0 {
			t.Errorf("a public client got %d bytes though the only agent was refused", n)
		}
	})

	t.Run("EarlyBytesWait", func(t *testing.T) {
		m := d.AddMapping(t, e2ePublicBody)
		c, err := net.Dial("tcp", d.Addr(m.Port2))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		early := []byte("sent before any agent link existed")
		if _, err := c.Write(early); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		te2eAgent(t, bin, "public", m.Port1, m.Passcode1, "--local", echo, "--pool", "1")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		got := make([]byte, len(early))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(early) {
			t.Fatalf("early bytes echoed as %q (%v), want %q", got, err, early)
		}
	})

	t.Run("AgentKilledMidTransfer", func(t *testing.T) {
		m := d.AddMapping(t, e2ePublicBody)
		agent := te2eAgent(t, bin, "public", m.Port1, m.Passcode1, "--local", echo, "--pool", "4")
		public := d.Addr(m.Port2)
		if err := pe2eWait(ctx, "agent ready", func() error { return pe2eRoundTrip(public, 1024, false, nil) }); err != nil {
			t.Fatal(err)
		}
		var clients []net.Conn
		for range 3 {
			c, err := net.Dial("tcp", public)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := func() error {
				c.Write([]byte("ping"))
				b := make([]byte, 4)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := io.ReadFull(c, b)
				return err
			}(); err != nil {
				t.Fatalf("relay before the kill: %v", err)
			}
			clients = append(clients, c)
			// Keep bytes flowing both ways while the agent dies.
			go func() {
				chunk := make([]byte, 16<<10)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)               // mid-transfer
		if err := agent.cmd.Process.Kill(); err != nil { // SIGKILL, by PID
			t.Fatal(err)
		}
		<-agent.done
		for i, c := range clients {
			if err := te2eReadEnds(c, 10*time.Second); err != nil {
				t.Errorf("public client %d after its agent was killed: %v", i, err)
			}
		}
	})

	t.Run("AgentStopsOnSIGTERM", func(t *testing.T) {
		m := d.AddMapping(t, e2ePublicBody)
		agent := te2eAgent(t, bin, "public", m.Port1, m.Passcode1, "--local", echo, "--pool", "2")
		if err := pe2eWait(ctx, "agent ready", func() error { return pe2eRoundTrip(d.Addr(m.Port2), 1024, false, nil) }); err != nil {
			t.Fatal(err)
		}
		if err := agent.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-agent.done:
			if code := agent.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("agent exit code %d after SIGTERM, want 0", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("agent still running 10s after SIGTERM")
		}
	})

	t.Run("HeartbeatAbsence", func(t *testing.T) {
		m := d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":1000}`)
		c, err := te2eLegacyDial(d.Addr(m.Port1), m.Passcode1, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if err := te2eReadEnds(c, 6*time.Second); err != nil {
			t.Fatalf("a silent legacy link with a 1s threshold: %v", err)
		}
		if took := time.Since(start); took < 900*time.Millisecond {
			t.Errorf("silent link closed after %v, before its 1s threshold", took)
		} else {
			t.Logf("silent link closed after %v (threshold 1s)", took.Round(time.Millisecond))
		}
	})

	t.Run("PrivateBothWays", func(t *testing.T) {
		// Side 1 serves the echo; side 2's clients reach it. Then the
		// reverse on a second mapping: side 2 serves, side 1 listens.
		for _, serveSide := range []int{1, 2} {
			m := d.AddMapping(t, e2ePrivateBody)
			ports := map[int]int{1: m.Port1, 2: m.Port2}
			codes := map[int]string{1: m.Passcode1, 2: m.Passcode2}
			other := 3 - serveSide
			te2eAgent(t, bin, "private", ports[serveSide], codes[serveSide], "--local", echo)
			listen := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
			te2eAgent(t, bin, "private", ports[other], codes[other], "--listen", listen)
			if err := pe2eWait(ctx, fmt.Sprintf("private round trip, side %d serving", serveSide), func() error {
				return pe2eRoundTrip(listen, 256<<10, false, nil)
			}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("PrivateLegacyToOurAgent", func(t *testing.T) {
		// Side 1: our agent in front of the echo; side 2: a legacy agent
		// (maxconnections 1 each). Three successive exchanges: side 1's
		// agent gets its link back after each stream ends.
		m := d.AddMapping(t, e2ePrivateBody)
		te2eAgent(t, bin, "private", m.Port1, m.Passcode1, "--local", echo)
		for i := range 3 {
			if err := pe2eWait(ctx, fmt.Sprintf("legacy side 2 exchange %d", i), func() error {
				c, err := te2eLegacyDial(d.Addr(m.Port2), m.Passcode2, nil)
				if err != nil {
					return err
				}
				defer c.Close()
				return te2eExact(c, 64<<10)
			}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("PrivateLegacy", func(t *testing.T) {
		m := d.AddMapping(t, e2ePrivateBody)
		a, err := te2eLegacyDial(d.Addr(m.Port1), m.Passcode1, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := te2eLegacyDial(d.Addr(m.Port2), m.Passcode2, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for _, dir := range []struct {
			from, to net.Conn
			msg      string
		}{{a, b, "agent A's framed message"}, {b, a, "agent B's answer"}} {
			if err := pe2eWait(ctx, "legacy private pipe", func() error {
				dir.from.Write([]byte(dir.msg))
				got := make([]byte, len(dir.msg))
				dir.to.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(dir.to, got); err != nil || string(got) != dir.msg {
					return fmt.Errorf("read %q (%v), want %q", got, err, dir.msg)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestPipeE2ETLS(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 10, TLS: true})
	ca := filepath.Join(t.TempDir(), "connector.pem")
	if err := os.WriteFile(ca, d.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	echo := e2eEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := d.AddMapping(t, e2ePublicBody)
	tc := &tls.Config{RootCAs: d.CertPool, ServerName: "127.0.0.1"}
	// A plain (non-TLS) legacy agent is not authorized on a TLS port.
	if c, err := te2eLegacyDial(d.Addr(m.Port1), m.Passcode1, nil); err == nil {
		c.Close()
		t.Error("a plain-TCP agent was authorized on a TLS agent port")
	}
	te2eAgent(t, d.Bin, "public", m.Port1, m.Passcode1, "--local", echo, "--pool", "4", "--ca", ca)
	roundTrip := func(size int) error {
		c, err := tls.Dial("tcp", d.Addr(m.Port2), tc)
		if err != nil {
			return err
		}
		defer c.Close()
		return te2eExact(c, size)
	}
	if err := pe2eWait(ctx, "TLS public round trip through our agent", func() error { return roundTrip(1 << 20) }); err != nil {
		t.Fatal(err)
	}
	// A legacy agent over TLS serves a mapping of its own, byte-exact.
	m2 := d.AddMapping(t, e2ePublicBody)
	lc, err := te2eLegacyDial(d.Addr(m2.Port1), m2.Passcode1, tc)
	if err != nil {
		t.Fatalf("legacy agent over TLS: %v", err)
	}
	go te2eLegacyServe(lc, echo, 200*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // beats answered over TLS while idle
	c, err := tls.Dial("tcp", d.Addr(m2.Port2), tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := te2eExact(c, 256<<10); err != nil {
		t.Fatalf("TLS public client through a legacy TLS link: %v", err)
	}
}

// TestPipeE2ESplice shows that the relays splice: strace counts the
// splice(2) calls of the daemon and of our agent while one 64 MiB stream
// crosses a public pipe, and each must make some. It needs strace (and
// ptrace rights); without them it is skipped, saying so.
func TestPipeE2ESplice(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed: splice is not observable here")
	}
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 4})
	echo := e2eEcho(t)
	m := d.AddMapping(t, e2ePublicBody)
	agent := te2eAgent(t, d.Bin, "public", m.Port1, m.Passcode1, "--local", echo, "--pool", "1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pe2eWait(ctx, "agent ready", func() error { return pe2eRoundTrip(d.Addr(m.Port2), 1024, false, nil) }); err != nil {
		t.Fatal(err)
	}
	type traced struct {
		name string
		cmd  *exec.Cmd
		out  *e2eBuffer
	}
	var ts []traced
	for name, pid := range map[string]int{"daemon": d.PID(), "agent": agent.cmd.Process.Pid} {
		out := &e2eBuffer{}
		cmd := exec.Command(strace, "-f", "-c", "-e", "trace=splice", "-p", strconv.Itoa(pid))
		cmd.Stderr, cmd.Stdout = out, out
		if err := cmd.Start(); err != nil {
			t.Skipf("strace cannot start: %v", err)
		}
		ts = append(ts, traced{name, cmd, out})
	}
	time.Sleep(500 * time.Millisecond) // let strace attach
	if err := pe2eRoundTrip(d.Addr(m.Port2), 64<<20, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, tr := range ts {
		tr.cmd.Process.Signal(os.Interrupt) // strace prints its summary on SIGINT
		tr.cmd.Wait()
		out := tr.out.String()
		if strings.Contains(out, "Operation not permitted") {
			t.Skipf("strace may not attach here (ptrace): %s", out)
		}
		calls := 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 5 && f[len(f)-1] == "splice" {
				calls, _ = strconv.Atoi(f[3])
			}
		}
		t.Logf("%s: %d splice calls for a 64 MiB round trip", tr.name, calls)
		if calls == 0 {
			t.Errorf("the %s made no splice(2) call while relaying 64 MiB each way; strace said:\n%s", tr.name, out)
		}
	}
}
