package main

// End-to-end test of transport plugins (issue 4): the real binary, the real
// example plugin, the REST API and our agent, on loopback. Helpers here are
// prefixed pe2e so they cannot clash with the shared e2e helpers.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pe2eBuild returns the connector binary and the example WebSocket
// plugin's directory, each built once per test run (e2e_build_test.go).
func pe2eBuild(t *testing.T) (bin, pluginDir string) {
	t.Helper()
	return e2eBinary(t), e2ePluginDir(t)
}

// pe2ePortRange finds n consecutive free TCP ports on loopback.
func pe2ePortRange(t *testing.T, n int) (lo, hi int) {
	t.Helper()
	for range 50 {
		lo = 20000 + mrand.IntN(40000)
		ok := true
		var lns []net.Listener
		for p := lo; p < lo+n && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return lo, lo + n - 1
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

// pe2ePost calls the REST API with a form and decodes the JSON answer.
func pe2ePost(ctx context.Context, api, route string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+route, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", route, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}

// pe2eRoundTrip sends size random bytes to addr in chunks (pausing between
// them when slow), half-closes, reads the echo and compares checksums.
// started is called once the first chunk is written.
func pe2eRoundTrip(addr string, size int, slow bool, started func()) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		const chunk = 256 << 10
		for off := 0; off < len(data); off += chunk {
			if _, err := c.Write(data[off:min(off+chunk, len(data))]); err != nil {
				werr <- err
				return
			}
			if off == 0 && started != nil {
				started()
			}
			if slow {
				time.Sleep(20 * time.Millisecond)
			}
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d bytes: %w", n, rerr)
	}
	if n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("echoed %d bytes, want %d; checksums equal: %v", n, size, bytes.Equal(h.Sum(nil), want[:]))
	}
	return nil
}

// pe2eChildren returns the PIDs whose parent is pid and whose command line
// contains substr.
func pe2eChildren(pid int, substr string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; split after ')'.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != pid {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmdline), substr) {
			out = append(out, child)
		}
	}
	return out
}

func pe2eWait(ctx context.Context, what string, f func() error) error {
	var err error
	for {
		if err = f(); err == nil {
			return nil
		}
		var fatal errFatal
		if errors.As(err, &fatal) {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestPluginsCommand(t *testing.T) {
	bin, pluginDir := pe2eBuild(t)
	out, err := exec.Command(bin, "plugins", "--plugin-dir", pluginDir).CombinedOutput()
	if err != nil {
		t.Fatalf("plugins: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "websocket") || !strings.Contains(string(out), "plugin") || !strings.Contains(string(out), "sdk 1.") {
		t.Fatalf("plugins output lacks the websocket plugin and its version:\n%s", out)
	}
	// Without --plugin-dir, plugins.dir of the settings file is used.
	cfg := filepath.Join(t.TempDir(), "iofog-connector.conf")
	if err := os.WriteFile(cfg, []byte(`{"plugins":{"dir":"`+pluginDir+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "plugins", "--config", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "websocket") {
		t.Fatalf("plugins --config (plugins.dir): %v\n%s", err, out)
	}
	// A plugin built against another protocol version is refused, saying so.
	bad := filepath.Join(t.TempDir(), "iofog-transport-future")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho '1|99|tcp|127.0.0.1:1|grpc'\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "plugins", "--plugin-dir", filepath.Dir(bad)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "incompatible") {
		t.Fatalf("plugins with an incompatible plugin: err %v, output:\n%s", err, out)
	}
}

// TestPluginE2E: the daemon loads the example plugin from plugins.dir; a
// mapping naming "websocket" is added over REST; our agent (loading the
// same plugin) serves an echo service through it; checksummed data crosses;
// the daemon's plugin process is killed mid-transfer; the daemon survives
// and the mapping serves again; the mapping is removed; stopping the daemon
// stops its plugin.
func TestPluginE2E(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, pluginDir := pe2eBuild(t)
	d := e2eStartDaemon(t, e2eOptions{Settings: map[string]any{
		"plugins": map[string]any{"dir": pluginDir},
		// The mapping names its transport; the default is websocket too,
		// so this test depends on no built-in transport.
		"transport": "websocket",
	}})
	pids := pe2eChildren(d.PID(), "iofog-transport-websocket")
	if len(pids) != 1 {
		t.Fatalf("daemon has %d websocket plugin children (%v), want 1", len(pids), pids)
	}
	m := d.AddMapping(t, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"websocket"}`)
	if m.Port1 == 0 || m.Port2 == 0 || m.Passcode1 == "" {
		t.Fatalf("mapping/add answered %+v", m)
	}
	echo := e2eEcho(t)
	agent := e2eStart(t, d.Bin, "agent", "public",
		"--connector", d.Addr(m.Port1),
		"--passcode", m.Passcode1,
		"--local", echo,
		"--transport", "websocket",
		"--plugin-dir", pluginDir,
		"--plaintext")
	public := d.Addr(m.Port2)
	alive := func() error {
		switch {
		case !d.Running():
			return errFatal("the daemon exited")
		case !agent.alive():
			return errFatal("the agent exited")
		}
		return nil
	}
	if err := pe2eWait(ctx, "first checksummed round trip", func() error {
		if err := alive(); err != nil {
			return err
		}
		return pe2eRoundTrip(public, 4<<20, false, nil)
	}); err != nil {
		t.Fatal(err)
	}
	// Several at once.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pe2eRoundTrip(public, 2<<20, false, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent round trip: %v", err)
		}
	}

	// Kill the daemon's plugin in the middle of a transfer.
	killed := make(chan struct{})
	err := pe2eRoundTrip(public, 16<<20, true, func() {
		syscall.Kill(pids[0], syscall.SIGKILL)
		close(killed)
	})
	select {
	case <-killed:
	default:
		t.Fatal("the transfer ended before the plugin was killed")
	}
	if err == nil {
		t.Fatal("a transfer through a plugin killed mid-way completed intact")
	}
	t.Logf("transfer through the killed plugin failed as it should: %v", err)
	if !d.Running() {
		t.Fatalf("the daemon died with its plugin")
	}
	// The mapping serves again through a new plugin process.
	start := time.Now()
	if err := pe2eWait(ctx, "round trip after the plugin restart", func() error {
		if err := alive(); err != nil {
			return err
		}
		return pe2eRoundTrip(public, 4<<20, false, nil)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the mapping served again %v after the plugin was killed", time.Since(start).Round(time.Millisecond))
	if now := pe2eChildren(d.PID(), "iofog-transport-websocket"); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("websocket plugin children after restart: %v (killed %d)", now, pids[0])
	}
	if logs := d.Logs.String(); !strings.Contains(logs, "transport plugin died") || !strings.Contains(logs, "stderr=") {
		t.Errorf("the daemon did not log the plugin's death with its stderr:\n%s", logs)
	}
	if code, _, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {"all"}}); err != nil || code != http.StatusOK {
		t.Fatalf("status after the restart: %d, %v", code, err)
	}

	d.RemoveMapping(t, m.ID)
	if err := pe2eRoundTrip(public, 1024, false, nil); err == nil {
		t.Error("the public port still relays after mapping/remove")
	}

	// Stopping the daemon stops its plugin.
	plugin := pe2eChildren(d.PID(), "iofog-transport-websocket")
	d.Stop(t)
	for _, pid := range plugin {
		if err := pe2eWait(ctx, "plugin exit", func() error {
			if syscall.Kill(pid, 0) == nil {
				if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(st), ") Z ") {
					return nil // a zombie waiting for its reaper: exited
				}
				return fmt.Errorf("plugin %d still running", pid)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
}

// errFatal marks an error pe2eWait must not retry.
type errFatal string

func (e errFatal) Error() string { return string(e) }

// BenchmarkPublicPipe moves bytes one way (public client → agent's local
// service) through the real daemon and agent binaries, over the built-in
// tcp transport and over the websocket plugin, so the plugin's cost shows
// beside a built-in transport. Run:
//
//	go test -run XXX -bench PublicPipe -benchtime 3s ./cmd/iofog-connector/
func BenchmarkPublicPipe(b *testing.B) {
	pluginDir := e2ePluginDir(b)
	d := e2eStartDaemon(b, e2eOptions{Settings: map[string]any{"plugins": map[string]any{"dir": pluginDir}}})
	for _, tr := range []string{"tcp", "websocket"} {
		b.Run(tr, func(b *testing.B) {
			m := d.AddMapping(b, `{"type":"public","maxconnections":60,"heartbeatabsencethreshold":200000,"transport":"`+tr+`"}`)
			defer d.RemoveMapping(b, m.ID)
			// The local service counts what it receives.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				got <- n
			}()
			agent := exec.Command(d.Bin, "agent", "public", "--connector", d.Addr(m.Port1), "--passcode", m.Passcode1,
				"--local", ln.Addr().String(), "--transport", tr, "--plugin-dir", pluginDir, "--plaintext")
			if err := agent.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() {
				agent.Process.Signal(syscall.SIGTERM)
				agent.Wait()
			}()
			var c net.Conn
			deadline := time.Now().Add(30 * time.Second)
			for {
				// The first byte reaching the service proves the link.
				if c, err = net.Dial("tcp", d.Addr(m.Port2)); err == nil {
					if _, err = c.Write([]byte{0}); err == nil {
						break
					}
					c.Close()
				}
				if time.Now().After(deadline) {
					b.Fatalf("no public connection: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			select {
			case n := <-got:
				if n != int64(b.N*len(buf))+1 {
					b.Fatalf("the service got %d bytes, want %d", n, b.N*len(buf)+1)
				}
			case <-time.After(60 * time.Second):
				b.Fatal("the service did not see the end of the stream")
			}
			b.StopTimer()
			c.Close()
		})
	}
}

// TestPluginDiesWithDaemon kills the daemon with SIGKILL, so it cannot stop
// its plugin: the plugin must notice and exit on its own.
func TestPluginDiesWithDaemon(t *testing.T) {
	_, pluginDir := pe2eBuild(t)
	d := e2eStartDaemon(t, e2eOptions{Settings: map[string]any{"plugins": map[string]any{"dir": pluginDir}}})
	pids := pe2eChildren(d.PID(), "iofog-transport-websocket")
	if len(pids) != 1 {
		t.Fatalf("daemon has %d websocket plugin children (%v), want 1", len(pids), pids)
	}
	d.Kill9(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := pe2eWait(ctx, "orphaned plugin exit", func() error {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pids[0]))
		if err != nil || strings.Contains(string(st), ") Z ") {
			return nil
		}
		return fmt.Errorf("plugin %d still running", pids[0])
	}); err != nil {
		syscall.Kill(pids[0], syscall.SIGKILL) // the daemon started it; we stand in for it
		t.Fatal(err)
	}
}
