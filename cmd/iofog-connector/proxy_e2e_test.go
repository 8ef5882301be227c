package main

// End-to-end tests of the PROXY protocol option (issue 11): the real
// binary as daemon and as agent, public mappings with proxyprotocol v1 and
// v2 over tcp, yamux and quic, a local service written here that parses
// the header with its own small parser (not the project's), and public
// clients connecting from 127.0.0.2, whose address and port the service
// must see exactly. With haproxy on PATH, haproxy in accept-proxy mode is
// the local service too. Helpers are prefixed ppe2e.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// ppe2eClientIP is the public clients' source address: distinct from the
// agent's 127.0.0.1, so a service that saw the agent instead would fail.
const ppe2eClientIP = "127.0.0.2"

// ppe2eHeader is what the local service read: the header's version (0 for
// none) and its addresses.
type ppe2eHeader struct {
	version  int
	src, dst netip.AddrPort
}

// ppe2eParse reads a PROXY protocol header from r, strictly and within
// bounds, as a service behind the agent would: a v1 line (at most 107
// bytes, TCP4 or TCP6) or a v2 header with the PROXY command over TCP
// (at most 16+216 bytes). It is independent of sdk/proxyproto on purpose.
func ppe2eParse(r *bufio.Reader) (ppe2eHeader, error) {
	first, err := r.Peek(1)
	if err != nil {
		return ppe2eHeader{}, err
	}
	switch first[0] {
	case 'P':
		var line []byte
		for len(line) < 107 {
			b, err := r.ReadByte()
			if err != nil {
				return ppe2eHeader{}, err
			}
			line = append(line, b)
			if b == '\n' {
				break
			}
		}
		s, ok := strings.CutSuffix(string(line), "\r\n")
		if !ok {
			return ppe2eHeader{}, fmt.Errorf("v1 line %q does not end in CRLF within 107 bytes", line)
		}
		f := strings.Split(s, " ")
		if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
			return ppe2eHeader{}, fmt.Errorf("v1 line %q", s)
		}
		src, err1 := netip.ParseAddr(f[2])
		dst, err2 := netip.ParseAddr(f[3])
		sp, err3 := strconv.ParseUint(f[4], 10, 16)
		dp, err4 := strconv.ParseUint(f[5], 10, 16)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return ppe2eHeader{}, fmt.Errorf("v1 line %q: %w", s, err)
		}
		if (f[1] == "TCP4") != (src.Is4() && dst.Is4()) {
			return ppe2eHeader{}, fmt.Errorf("v1 line %q: family and addresses disagree", s)
		}
		return ppe2eHeader{1, netip.AddrPortFrom(src, uint16(sp)), netip.AddrPortFrom(dst, uint16(dp))}, nil
	case '\r':
		var hdr [16]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return ppe2eHeader{}, err
		}
		if string(hdr[:12]) != "\r\n\r\n\x00\r\nQUIT\n" || hdr[12] != 0x21 {
			return ppe2eHeader{}, fmt.Errorf("v2 header %x: bad signature or not a PROXY command", hdr)
		}
		n := int(binary.BigEndian.Uint16(hdr[14:]))
		if n > 216 {
			return ppe2eHeader{}, fmt.Errorf("v2 length %d", n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return ppe2eHeader{}, err
		}
		al := 0
		switch hdr[13] {
		case 0x11:
			al = 4
		case 0x21:
			al = 16
		default:
			return ppe2eHeader{}, fmt.Errorf("v2 family %#x", hdr[13])
		}
		if n < 2*al+4 {
			return ppe2eHeader{}, fmt.Errorf("v2 length %d too short", n)
		}
		src, _ := netip.AddrFromSlice(body[:al])
		dst, _ := netip.AddrFromSlice(body[al : 2*al])
		return ppe2eHeader{2,
			netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[2*al:])),
			netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2*al+2:]))}, nil
	}
	return ppe2eHeader{}, nil // no header
}

// ppe2eService is the local service: it parses a header if there is one,
// answers one line "v<N> <src> <dst>" ("v0" for none, or "error ..."),
// then echoes.
func ppe2eService(t *testing.T) string {
	t.Helper()
	return transporttest.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		h, err := ppe2eParse(br)
		if err != nil {
			fmt.Fprintf(c, "error %v\n", err)
			return
		}
		fmt.Fprintf(c, "v%d %v %v\n", h.version, h.src, h.dst)
		io.Copy(c, br)
	})
}

// ppe2eClient connects to public from ppe2eClientIP, sends a line, and
// returns the service's report, the echoed line, and the client's own
// address.
func ppe2eClient(public string) (report, echoed string, self netip.AddrPort, err error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ppe2eClientIP)}}
	c, err := d.Dial("tcp", public)
	if err != nil {
		return "", "", self, err
	}
	defer c.Close()
	self = c.LocalAddr().(*net.TCPAddr).AddrPort()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello through the pipe\n")); err != nil {
		return "", "", self, err
	}
	br := bufio.NewReader(c)
	report, err = br.ReadString('\n')
	if err != nil {
		return report, "", self, fmt.Errorf("reading the service's report: %w", err)
	}
	echoed, err = br.ReadString('\n')
	return strings.TrimSpace(report), echoed, self, err
}

// ppe2eAgent starts our agent for mapping m toward local; pluginDir, when
// set, holds the websocket plugin.
func ppe2eAgent(t *testing.T, d *e2eDaemon, m e2eMapping, transport, local, pluginDir string) *e2eProc {
	t.Helper()
	args := e2eAgentArgs("public", d.Addr(m.Port1), m.Passcode1, "--local", local, "--transport", transport)
	args = append(args, me2eTrustArgs(t, transport, d.DataDir)...)
	if pluginDir != "" {
		args = append(args, "--plugin-dir", pluginDir)
	}
	return e2eStart(t, d.Bin, args...)
}

// ppe2eCheck waits for the pipe, then connects three public clients and
// checks the service saw each one's exact address and port, and the
// public port as the destination.
func ppe2eCheck(ctx context.Context, t *testing.T, d *e2eDaemon, m e2eMapping, agent *e2eProc, version int) {
	t.Helper()
	public := d.Addr(m.Port2)
	dst := netip.MustParseAddrPort(public)
	if err := pe2eWait(ctx, "first client through the pipe", func() error {
		if !agent.alive() {
			return errors.New("agent exited:\n" + agent.out.String())
		}
		_, _, _, err := ppe2eClient(public)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		report, echoed, self, err := ppe2eClient(public)
		if err != nil {
			t.Fatalf("client %d: %v (report %q)", i, err, report)
		}
		want := fmt.Sprintf("v%d %v %v", version, self, dst)
		if version == 0 {
			want = "v0 invalid AddrPort invalid AddrPort"
		}
		if report != want || echoed != "hello through the pipe\n" {
			t.Fatalf("client %d from %v: the service reported %q and echoed %q; want %q and the client's line", i, self, report, echoed, want)
		}
		if self.Addr().String() != ppe2eClientIP {
			t.Fatalf("client bound to %v, not %s", self, ppe2eClientIP)
		}
	}
}

// TestProxyProtocolE2E: for each transport (the built-in ones and the
// example websocket plugin), a public mapping with proxyprotocol v1, one
// with v2 (and over tcp one without); the service behind each sees the
// public client's exact address and port (and the public port) in a
// header of the mapping's version, or no header. The mapping's status
// shows the setting, and it survives a daemon restart.
func TestProxyProtocolE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	e2eWatchdog(t, 8*time.Minute)
	pluginDir := e2ePluginDir(t)
	d := e2eStartDaemon(t, e2eOptions{Settings: map[string]any{"plugins": map[string]any{"dir": pluginDir}}})
	svc := ppe2eService(t)
	type made struct {
		m       e2eMapping
		version int
	}
	var keep []made
	for _, transport := range []string{"tcp", "yamux", "quic", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			for _, version := range []int{1, 2, 0} {
				if version == 0 && transport != "tcp" {
					continue
				}
				pp := ""
				if version > 0 {
					pp = fmt.Sprintf(`,"proxyprotocol":"v%d"`, version)
				}
				m := d.AddMapping(t, fmt.Sprintf(`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":%q%s}`, transport, pp))
				agent := ppe2eAgent(t, d, m, transport, svc, pluginDir)
				ppe2eCheck(ctx, t, d, m, agent, version)
				st := ppe2eStatus(ctx, t, d, m.ID)
				if got := st["proxyprotocol"]; got != strings.TrimPrefix(fmt.Sprintf("v%d", version), "v0") {
					t.Fatalf("status of mapping %s shows proxyprotocol %v, want v%d", m.ID, got, version)
				}
				agent.stop(t)
				if version > 0 {
					keep = append(keep, made{m, version})
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	// The setting is stored: after a restart each mapping still has it.
	d.Stop(t)
	d.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, k := range keep {
		st := ppe2eStatus(ctx, t, d, k.m.ID)
		if got := st["proxyprotocol"]; got != fmt.Sprintf("v%d", k.version) {
			t.Fatalf("after a restart mapping %s shows proxyprotocol %v, want v%d", k.m.ID, got, k.version)
		}
	}
	k := keep[0] // tcp, v1: still relays with the header
	agent := ppe2eAgent(t, d, k.m, "tcp", svc, "")
	ppe2eCheck(ctx, t, d, k.m, agent, k.version)
}

// TestProxyProtocolE2ERefused: the API refuses proxyprotocol on a private
// mapping and values other than v1 and v2, with a message naming it.
func TestProxyProtocolE2ERefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, body := range []string{
		`{"type":"private","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":200000,"proxyprotocol":"v1"}`,
		`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"proxyprotocol":"v3"}`,
	} {
		code, ans, err := d.Post(ctx, "/api/v2/mapping/add", url.Values{"mapping": {body}})
		if err != nil || code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(ans["errormessage"]), "proxyprotocol") {
			t.Fatalf("add %s: %d %v %v; want 400 naming proxyprotocol", body, code, ans, err)
		}
	}
}

// ppe2eStatus returns the status of mapping id.
func ppe2eStatus(ctx context.Context, t *testing.T, d *e2eDaemon, id string) map[string]any {
	t.Helper()
	code, st, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {id}})
	if err != nil || code != 200 {
		t.Fatalf("status %s: %d %v %v", id, code, st, err)
	}
	return st
}

// TestProxyProtocolE2EHAProxy: haproxy, as the local service, accepts the
// agent's PROXY header (accept-proxy) and answers each HTTP request with
// the client address it learnt from it; a v1 and a v2 mapping must both
// report the public client's exact address and port. Skipped when haproxy
// is not on PATH (.ci/run installs it).
func TestProxyProtocolE2EHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	hap, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not on PATH (apt-get install haproxy)")
	}
	e2eWatchdog(t, 4*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{})
	local := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	// haproxy answers every request itself with the source address and
	// port it took from the PROXY header.
	conf := fmt.Sprintf(`global
    maxconn 64
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend behind_agent
    bind %s accept-proxy
    http-request return status 200 content-type text/plain lf-string "client=%%[src]:%%[src_port] dst=%%[dst]:%%[dst_port]\n"
`, local)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(hap, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c refused the config: %v\n%s", err, out)
	}
	e2eStart(t, hap, "-db", "-f", cfg)
	e2eWaitPort(t, local, 20*time.Second)
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			m := d.AddMapping(t, fmt.Sprintf(`{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"proxyprotocol":"v%d"}`, version))
			agent := ppe2eAgent(t, d, m, "tcp", local, "")
			defer agent.stop(t)
			public := d.Addr(m.Port2)
			var body string
			var self netip.AddrPort
			if err := pe2eWait(ctx, "an answer from haproxy through the pipe", func() error {
				if !agent.alive() {
					return errors.New("agent exited:\n" + agent.out.String())
				}
				var err error
				body, self, err = ppe2eHTTP(public)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("client=%s dst=%s", self, public)
			if strings.TrimSpace(body) != want {
				t.Fatalf("haproxy answered %q; want %q", body, want)
			}
		})
	}
}

// ppe2eHTTP sends one HTTP request to public from ppe2eClientIP and
// returns the body and the client's address.
func ppe2eHTTP(public string) (string, netip.AddrPort, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ppe2eClientIP)}}
	c, err := d.Dial("tcp", public)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	defer c.Close()
	self := c.LocalAddr().(*net.TCPAddr).AddrPort()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", self, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", self, err
	}
	if resp.StatusCode != 200 {
		return "", self, fmt.Errorf("haproxy answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return string(b), self, nil
}

// TestProxyProtocolE2ELegacyAgent: a legacy ioFog agent on a mapping with
// proxyprotocol still relays (it could not take the client's address, so
// its service gets no header), and the daemon says so once per mapping at
// INFO, however many clients it relays.
func TestProxyProtocolE2ELegacyAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	e2eWatchdog(t, 3*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{})
	svc := ppe2eService(t)
	m := d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"proxyprotocol":"v2"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 2 {
		legacy := hliveLegacyAgent(t, hliveLegacySpec{Addr: d.Addr(m.Port1), Passcode: m.Passcode1, Local: svc, BeatMS: 1000, TryMS: 10000})
		if _, err := legacy.waitLine("AUTHORIZED", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		report, echoed, _, err := ppe2eClient(d.Addr(m.Port2))
		if err != nil || report != "v0 invalid AddrPort invalid AddrPort" || echoed != "hello through the pipe\n" {
			t.Fatalf("client %d over a legacy agent: report %q, echoed %q, %v; want no header and the echo", i, report, echoed, err)
		}
		select {
		case <-legacy.done: // its one link ended with the client
		case <-ctx.Done():
			t.Fatal("the legacy agent's link outlived its client")
		}
	}
	const line = "legacy ioFog agent"
	if n := strings.Count(d.Logs.String(), line); n != 1 {
		t.Fatalf("the daemon logged %q %d times, want once:\n%s", line, n, d.Logs.String())
	}
}
