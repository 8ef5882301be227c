package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/api/control"
	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/core/settings"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/transports/tcp"
)

// syncBuffer is a log sink the daemon's goroutines write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePorts returns n ports the kernel just handed out on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// testConfig is a dev-mode daemon on loopback with the tcp transport only,
// its API on a free port and its data dir in a temp dir.
func testConfig(t *testing.T, logs *syncBuffer) Config {
	t.Helper()
	s := &settings.Settings{
		Dev: true, Pool: freePorts(t, 4), APIAddress: "127.0.0.1:0", BindHost: "127.0.0.1",
		DataDir: t.TempDir(), Transport: "tcp", LogLevel: slog.LevelInfo,
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	return Config{
		Settings: s, Version: "9.9.9-test", Logger: log,
		Transports: func(context.Context) (map[string]sdk.Transport, func() error, error) {
			tr, err := tcp.New(tcp.Config{}, log)
			if err != nil {
				return nil, nil, err
			}
			return map[string]sdk.Transport{"tcp": tr}, func() error { return nil }, nil
		},
	}
}

// apiURL reads the API's bound address from the start-up line.
func apiURL(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	m := regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no API address in the start-up line:\n%s", logs)
	}
	return m[1]
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDaemonLifecycle: New binds the API and the control socket (0600);
// Run serves both, the REST status and the control status agree, a
// mapping added over the control socket is stored; a stop over the control
// socket ends Run without error, in the logged order; Close flushes the
// store, and a second daemon on the same data dir restores the mapping.
func TestDaemonLifecycle(t *testing.T) {
	logs := &syncBuffer{}
	cfg := testConfig(t, logs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := os.Stat(control.Path(cfg.Settings.DataDir))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket after New: %v %v", fi, err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()
	waitFor(t, "the start-up line", func() bool { return strings.Contains(logs.String(), "iofog-connector started") })
	api := apiURL(t, logs)

	ctl := control.NewClient(cfg.Settings.DataDir, "")
	m, err := ctl.Add(ctx, core.AddRequest{ID: "web", Type: core.TypePublic, MaxConnections1: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m.Passcode1 == "" || m.State != status.StateWaiting {
		t.Fatalf("add: %+v", m)
	}
	st, err := ctl.Status(ctx)
	if err != nil || len(st.Mappings) != 1 || st.Version != "9.9.9-test" || st.Transports[0] != "tcp" || st.PID != os.Getpid() {
		t.Fatalf("control status: %v %+v", err, st)
	}
	resp, err := http.PostForm(api+"/api/v2/commandline", url.Values{"command": {"status"}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(b.String(), `Mappings:           1\n`) || !strings.Contains(b.String(), "web") {
		t.Fatalf("commandline status is not the daemon status: %s", b.String())
	}
	if _, err := ctl.Reload(ctx); err == nil || !strings.Contains(err.Error(), "without a way to read its settings again") {
		t.Fatalf("reload without Config.Reload: %v", err)
	}

	if err := ctl.Stop(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after a stop")
	}
	d.Close()
	d.Close() // idempotent
	out := logs.String()
	for _, order := range [][2]string{{"iofog-connector started", "stop requested on the control socket"}, {"stop requested", "shutting down"}, {"shutting down", `msg=stopped`}} {
		if i, j := strings.Index(out, order[0]), strings.Index(out, order[1]); i < 0 || j < i {
			t.Fatalf("%q does not come before %q:\n%s", order[0], order[1], out)
		}
	}
	if _, err := os.Stat(control.Path(cfg.Settings.DataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("control socket left behind: %v", err)
	}

	// The mapping was stored: a new daemon on the data dir restores it.
	logs2 := &syncBuffer{}
	cfg2 := testConfig(t, logs2)
	cfg2.Settings.DataDir, cfg2.Settings.Pool = cfg.Settings.DataDir, cfg.Settings.Pool
	d2, err := New(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	ctx2, stop2 := context.WithCancel(ctx)
	run2 := make(chan error, 1)
	go func() { run2 <- d2.Run(ctx2) }()
	if ms, err := ctl.Mappings(ctx); err != nil || len(ms) != 1 || ms[0].ID != "web" || ms[0].Port1 != m.Port1 {
		t.Fatalf("restored mappings: %v %+v", err, ms)
	}
	stop2() // the signal's way: ctx ends
	if err := <-run2; err != nil {
		t.Fatal(err)
	}
}

// TestNewFailsEarly: a setting at fault stops New with an error naming
// it, and New releases what it had bound (the API port, the control
// socket, the store's lock): a daemon can start on the same data dir
// right after.
func TestNewFailsEarly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"transport", func(c *Config) { c.Settings.Transport = "carrier-pigeon" }, `transport: "carrier-pigeon" is not available (have: tcp)`},
		{"transports", func(c *Config) {
			c.Transports = func(context.Context) (map[string]sdk.Transport, func() error, error) {
				return nil, nil, errors.New("plugin x: bad checksum")
			}
		}, "transports: plugin x: bad checksum"},
		{"api-address", func(c *Config) { c.Settings.APIAddress = busy.Addr().String() }, "api-address: "},
		{"tls", func(c *Config) { c.Settings.Dev, c.Settings.TLSCert = false, "/nonexistent.pem" }, "tls-cert/tls-key: "},
		{"data-dir", func(c *Config) { c.Settings.DataDir = "/dev/null/x" }, "data-dir /dev/null/x: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			cfg := testConfig(t, logs)
			dir := cfg.Settings.DataDir
			tt.edit(&cfg)
			if _, err := New(ctx, cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(control.Path(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed New left its control socket: %v", err)
			}
			ok := testConfig(t, logs)
			ok.Settings.DataDir = dir
			d, err := New(ctx, ok)
			if err != nil {
				t.Fatalf("a daemon cannot start after a failed New on the same data dir: %v", err)
			}
			d.Close()
		})
	}
}

// TestRunReloadsOnHUP: a SIGHUP on Config.HUP reloads (the level
// is applied), and Stop ends Run.
func TestRunReloadsOnHUP(t *testing.T) {
	logs := &syncBuffer{}
	cfg := testConfig(t, logs)
	hup := make(chan os.Signal, 1)
	level := new(slog.LevelVar)
	next := *cfg.Settings
	next.LogLevel = slog.LevelDebug
	cfg.HUP, cfg.Level = hup, level
	cfg.Reload = func() (*settings.Settings, error) { s := next; return &s, nil }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()
	hup <- syscall.SIGHUP
	waitFor(t, "the reload", func() bool { return level.Level() == slog.LevelDebug })
	if !strings.Contains(logs.String(), `msg="settings reloaded (SIGHUP)" changed="log-level info -> debug"`) {
		t.Fatalf("reload line:\n%s", logs)
	}
	d.Stop()
	d.Stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

// TestNewNeedsSettingsAndTransports: New rejects a Config without what it needs.
func TestNewNeedsSettingsAndTransports(t *testing.T) {
	if _, err := New(context.Background(), Config{}); err == nil {
		t.Fatal("New accepted an empty Config")
	}
}
