package main

// End-to-end tests of issue 9 item 5, "agents fail closed": the real agent
// binary against the real daemon (or a fake connector this test controls),
// real TLS with generated certificates, on loopback.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// haBin is the binary the agents run: the one built from this tree, or
// IOFOG_HARDEN_AGENT_BIN (to show these tests fail with an older agent).
func haBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IOFOG_HARDEN_AGENT_BIN"); p != "" {
		return p
	}
	return e2eBinary(t)
}

// haAgentArgs builds every agent command line of this file: `agent MODE`
// toward addr, with extra (security, passcode, local, transport) flags.
func haAgentArgs(mode, addr string, extra ...string) []string {
	return append([]string{"agent", mode, "--connector", addr, "--log-level", "debug"}, extra...)
}

// haStartAgent starts an agent of haBin with env added to this
// process's environment. At cleanup it is killed (SIGKILL) by its PID,
// before e2eProc's own cleanup.
func haStartAgent(t *testing.T, env []string, args ...string) *e2eProc {
	t.Helper()
	cmd := exec.Command(haBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	a := e2eStartCmd(t, cmd)
	t.Cleanup(a.kill) // runs before e2eStartCmd's
	return a
}

// haWaitLog waits up to within for the agent's logs to contain want.
func haWaitLog(t *testing.T, a *e2eProc, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(a.out.String(), want) {
		if !a.alive() {
			t.Fatalf("agent exited before logging %q:\n%s", want, a.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not log %q within %s:\n%s", want, within, a.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// haEcho serves an echo on loopback: it copies back what it reads, for a
// minute at most, and half-closes at EOF.
func haEcho(t *testing.T) string {
	t.Helper()
	return transporttest.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(time.Minute))
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// haRoundTrip sends size random bytes to the public port addr (TLS when tc
// is set), half-closes, reads the echo and compares SHA-256 checksums.
func haRoundTrip(addr string, tc *tls.Config, size int) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	c := raw
	if tc != nil {
		c = tls.Client(raw, tc)
	}
	defer c.Close()
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		if _, err := c.Write(data); err != nil {
			werr <- err
			return
		}
		werr <- c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d bytes: %w", n, rerr)
	}
	if got := h.Sum(nil); n != int64(size) || !bytes.Equal(got, want[:]) {
		return fmt.Errorf("echoed %d bytes of %d; checksums equal: %v", n, size, bytes.Equal(got, want[:]))
	}
	return nil
}

// haWaitRoundTrip retries haRoundTrip until it passes (the agent links
// asynchronously) or within passes.
func haWaitRoundTrip(t *testing.T, a *e2eProc, addr string, tc *tls.Config, size int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := haRoundTrip(addr, tc, size)
		if err == nil {
			return
		}
		if !a.alive() {
			t.Fatalf("agent exited:\n%s", a.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no intact round trip through %s within %s: %v", addr, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// haSide1 returns the mapping's agent-side state ("Active"/"Inactive").
func haSide1(t *testing.T, d *e2eDaemon, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {id}})
	if err != nil || code != 200 {
		t.Fatalf("status %s: %d %v %v", id, code, body, err)
	}
	s, _ := body["private"].(string)
	return s
}

// haQuicIdentity returns the dev identity certificate the daemon persisted.
func haQuicIdentity(t *testing.T, dataDir string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dataDir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() && de.Name() == "quic-identity.crt" {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no quic-identity.crt under %s", dataDir)
	}
	return found
}

// haWritePasscode writes content to a 0600 file and returns its path.
func haWritePasscode(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passcode")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// haBuildPlugin returns the example WebSocket transport plugin's
// directory, built once per test run (e2e_build_test.go).
func haBuildPlugin(t *testing.T) string {
	t.Helper()
	return e2ePluginDir(t)
}

// TestHardenAgentHelpNamesSecurityFlags: both agent commands name every
// TLS and passcode flag and the environment variable in --help.
func TestHardenAgentHelpNamesSecurityFlags(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	bin := haBin(t)
	for _, mode := range []string{"public", "private"} {
		out, err := exec.Command(bin, "agent", mode, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("agent %s --help: %v\n%s", mode, err, out)
		}
		for _, want := range []string{"--ca", "--server-name", "--insecure-skip-verify", "--plaintext", "--dev",
			"--passcode-file", "--passcode", "IOFOG_AGENT_PASSCODE", "system's root certificates"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("agent %s --help does not name %s:\n%s", mode, want, out)
			}
		}
	}
}

// TestHardenAgentTLSFailsClosed: against a TLS-only (dev:false) daemon
// whose certificate is in no system root store, an agent given neither
// --ca nor --plaintext refuses the connector on every transport (tcp,
// yamux, quic and the websocket plugin): a certificate error in its log,
// the mapping never active. With --ca it links and the public pipe relays
// 256 KiB checksummed both ways.
func TestHardenAgentTLSFailsClosed(t *testing.T) {
	e2eWatchdog(t, 6*time.Minute)
	pluginDir := haBuildPlugin(t)
	d := e2eStartDaemon(t, e2eOptions{Ports: 20, TLS: true, Settings: map[string]any{"plugins": map[string]any{"dir": pluginDir}}})
	ca := filepath.Join(d.Dir, "server-cert.pem")
	echo := haEcho(t)
	public := &tls.Config{RootCAs: d.CertPool, ServerName: "127.0.0.1"}
	for _, tr := range []string{"tcp", "yamux", "quic", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			m := d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"`+tr+`"}`)
			// --passcode, which the agent has always had, so that this
			// test shows what an older agent does.
			base := []string{"--passcode", m.Passcode1, "--local", echo, "--transport", tr, "--plugin-dir", pluginDir, "--pool", "1"}
			var env []string

			bad := haStartAgent(t, env, haAgentArgs("public", d.Addr(m.Port1), base...)...)
			haWaitLog(t, bad, "certificate signed by unknown authority", 30*time.Second)
			if !strings.Contains(bad.out.String(), "--ca FILE") {
				t.Errorf("the certificate error carries no hint naming --ca:\n%s", bad.out.String())
			}
			time.Sleep(500 * time.Millisecond)
			if s := haSide1(t, d, m.ID); s == "Active" {
				t.Fatalf("an agent that cannot verify the connector linked (status %q)", s)
			}
			bad.kill()

			good := haStartAgent(t, env, haAgentArgs("public", d.Addr(m.Port1), append(base, "--ca", ca)...)...)
			haWaitRoundTrip(t, good, d.Addr(m.Port2), public, 256<<10, 60*time.Second)
			if s := haSide1(t, d, m.ID); s != "Active" {
				t.Errorf("status %q with a linked agent", s)
			}
		})
	}
}

// TestHardenAgentNeverSendsPasscodeInClear: a fake connector (a loopback
// TCP listener this test controls, speaking plaintext) receives, from an
// agent given no security flag, a TLS ClientHello and never the passcode,
// over tcp and yamux; the agent logs a TLS failure with a hint about
// --plaintext. The same listener does capture the passcode from an agent
// given --plaintext, which shows the capture would see it.
func TestHardenAgentNeverSendsPasscodeInClear(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	const passcode = "hardenagent-passcode-0123456789abcdef"
	for _, tr := range []string{"tcp", "yamux"} {
		t.Run(tr, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			captured := make(chan []byte, 16)
			var wg sync.WaitGroup
			defer wg.Wait()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						// What the agent sends before it waits for an
						// answer: a ClientHello, or a passcode hello.
						c.SetReadDeadline(time.Now().Add(2 * time.Second))
						b, _ := io.ReadAll(io.LimitReader(c, 16<<10))
						select {
						case captured <- b:
						default:
						}
					}()
				}
			}()
			args := []string{"--passcode", passcode, "--local", "127.0.0.1:9", "--transport", tr, "--pool", "1"}

			a := haStartAgent(t, nil, haAgentArgs("public", ln.Addr().String(), args...)...)
			var got []byte
			select {
			case got = <-captured:
			case <-time.After(30 * time.Second):
				t.Fatalf("the fake connector received nothing:\n%s", a.out.String())
			}
			if len(got) < 6 || got[0] != 0x16 || got[1] != 0x03 || got[5] != 0x01 {
				t.Errorf("the first bytes are not a TLS ClientHello record: % x", got[:min(len(got), 16)])
			}
			if bytes.Contains(got, []byte(passcode)) {
				t.Fatalf("the passcode crossed the wire in clear: %q", got)
			}
			haWaitLog(t, a, "pass --plaintext", 30*time.Second)
			a.kill()
			for len(captured) > 0 {
				if b := <-captured; bytes.Contains(b, []byte(passcode)) {
					t.Fatalf("a later connection carried the passcode in clear: %q", b)
				}
			}

			plain := haStartAgent(t, nil, haAgentArgs("public", ln.Addr().String(), append(args, "--plaintext")...)...)
			select {
			case got = <-captured:
			case <-time.After(30 * time.Second):
				t.Fatalf("the fake connector received nothing from the --plaintext agent:\n%s", plain.out.String())
			}
			if !bytes.Contains(got, []byte(passcode)) {
				t.Errorf("with --plaintext the capture did not see the passcode (%q): the capture proves nothing", got)
			}
			plain.kill()
		})
	}
}

// TestHardenAgentPlaintextDevDaemon: against a dev-mode daemon, --plaintext
// and its alias --dev relay through the public pipe (with a warning that
// TLS is off), and an agent given no flag refuses to speak plaintext.
func TestHardenAgentPlaintextDevDaemon(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	echo := haEcho(t)
	for _, flag := range []string{"--plaintext", "--dev"} {
		t.Run(flag, func(t *testing.T) {
			m := d.AddMapping(t, e2ePublicBody)
			a := haStartAgent(t, []string{"IOFOG_AGENT_PASSCODE=" + m.Passcode1},
				haAgentArgs("public", d.Addr(m.Port1), "--local", echo, "--pool", "2", flag)...)
			haWaitRoundTrip(t, a, d.Addr(m.Port2), nil, 256<<10, 60*time.Second)
			if !strings.Contains(a.out.String(), "TLS is off") {
				t.Errorf("no warning that TLS is off:\n%s", a.out.String())
			}
		})
	}
	t.Run("no flag", func(t *testing.T) {
		m := d.AddMapping(t, e2ePublicBody)
		a := haStartAgent(t, []string{"IOFOG_AGENT_PASSCODE=" + m.Passcode1},
			haAgentArgs("public", d.Addr(m.Port1), "--local", echo, "--pool", "1")...)
		haWaitLog(t, a, "pass --plaintext", 30*time.Second)
		if s := haSide1(t, d, m.ID); s == "Active" {
			t.Fatalf("an agent without --plaintext linked to a dev-mode daemon (status %q)", s)
		}
	})
}

// TestHardenAgentQuicVerifies: against a dev-mode daemon's quic dev
// identity, a quic agent without --ca fails verification (certificate
// error, never active); with --ca <data dir>/quic-identity.crt it links
// and relays; with --dev it links, warning that nothing is verified.
func TestHardenAgentQuicVerifies(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	echo := haEcho(t)
	// A mapping per agent: a killed agent's QUIC connection lives on at
	// the connector until its idle timeout.
	add := func() (e2eMapping, []string) {
		m := d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"quic"}`)
		return m, []string{"IOFOG_AGENT_PASSCODE=" + m.Passcode1}
	}
	base := []string{"--local", echo, "--transport", "quic"}

	// --passcode, which the agent has always had, so that this test shows
	// what an older agent does.
	m, _ := add()
	bad := haStartAgent(t, nil, haAgentArgs("public", d.Addr(m.Port1), append(base, "--passcode", m.Passcode1)...)...)
	haWaitLog(t, bad, "certificate signed by unknown authority", 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	if s := haSide1(t, d, m.ID); s == "Active" {
		t.Fatalf("a quic agent without --ca linked to an unverified connector (status %q)", s)
	}
	bad.kill()

	m, env := add()
	good := haStartAgent(t, env, haAgentArgs("public", d.Addr(m.Port1), append(base, "--ca", haQuicIdentity(t, d.DataDir))...)...)
	haWaitRoundTrip(t, good, d.Addr(m.Port2), nil, 256<<10, 60*time.Second)
	good.kill()

	m, env = add()
	dev := haStartAgent(t, env, haAgentArgs("public", d.Addr(m.Port1), append(base, "--dev")...)...)
	haWaitRoundTrip(t, dev, d.Addr(m.Port2), nil, 64<<10, 60*time.Second)
	if !strings.Contains(dev.out.String(), "NOT verified") {
		t.Errorf("--dev over quic does not warn that the certificate is not verified:\n%s", dev.out.String())
	}
}

// TestHardenAgentPasscodeSources: the passcode from --passcode-file (one
// trailing newline ignored) and from IOFOG_AGENT_PASSCODE links and
// relays; --passcode warns that ps shows it; an empty file, no source, two
// sources and contradictory TLS flags stop the agent at once with an
// error naming the cause.
func TestHardenAgentPasscodeSources(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	echo := haEcho(t)
	m := d.AddMapping(t, e2ePublicBody)
	addr := d.Addr(m.Port1)

	t.Run("file", func(t *testing.T) {
		a := haStartAgent(t, nil, haAgentArgs("public", addr, "--local", echo, "--plaintext",
			"--passcode-file", haWritePasscode(t, m.Passcode1+"\n"))...)
		haWaitRoundTrip(t, a, d.Addr(m.Port2), nil, 64<<10, 60*time.Second)
		if strings.Contains(a.out.String(), "visible to every local user") {
			t.Errorf("--passcode-file warned about ps:\n%s", a.out.String())
		}
	})
	t.Run("env", func(t *testing.T) {
		a := haStartAgent(t, []string{"IOFOG_AGENT_PASSCODE=" + m.Passcode1},
			haAgentArgs("public", addr, "--local", echo, "--plaintext")...)
		haWaitRoundTrip(t, a, d.Addr(m.Port2), nil, 64<<10, 60*time.Second)
	})
	t.Run("flag warns", func(t *testing.T) {
		a := haStartAgent(t, nil, haAgentArgs("public", addr, "--local", echo, "--plaintext", "--passcode", m.Passcode1)...)
		haWaitRoundTrip(t, a, d.Addr(m.Port2), nil, 64<<10, 60*time.Second)
		if n := strings.Count(a.out.String(), "visible to every local user"); n != 1 {
			t.Errorf("%d warnings that --passcode is visible with ps, want 1:\n%s", n, a.out.String())
		}
	})
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"empty file", nil, []string{"--passcode-file", haWritePasscode(t, "\n")}, "empty"},
		{"no source", nil, nil, "no passcode"},
		{"two sources", []string{"IOFOG_AGENT_PASSCODE=" + m.Passcode1}, []string{"--passcode", m.Passcode1}, "exactly one source"},
		{"plaintext and ca", nil, []string{"--passcode", m.Passcode1, "--ca", filepath.Join(d.Dir, "none.pem")}, "--ca"},
		{"insecure and ca", nil, []string{"--passcode", m.Passcode1, "--insecure-skip-verify", "--ca", "x.pem"}, "--insecure-skip-verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := haAgentArgs("public", addr, append([]string{"--local", echo}, tc.args...)...)
			if tc.name != "insecure and ca" {
				args = append(args, "--plaintext")
			}
			env := append([]string{"IOFOG_AGENT_PASSCODE="}, tc.env...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, haBin(t), args...)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("agent %v: err %v (want a prompt refusal):\n%s", tc.args, err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("agent %v: output does not name %q:\n%s", tc.args, tc.want, out)
			}
		})
	}
}
