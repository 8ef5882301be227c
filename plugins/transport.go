package plugins

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
)

// Config is how plugins are started.
type Config struct {
	// Checksums maps a plugin's file name to the SHA-256 its executable
	// must have; a plugin listed here with another checksum is refused.
	// Nil means no check.
	Checksums map[string][]byte
	// Logger receives the host's and the plugins' logs. Nil discards.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the restart delay. Zero means 1s
	// and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Settings returns the settings of the transport a plugin reports it
	// serves (the operator's transports.<name>), which the plugin is
	// given each time its process starts, before any other call (see
	// plugin.Remote.Configure). Nil, or no settings, gives none.
	Settings func(name string) map[string]any
}

// Transport is a transport served by a plugin process that it supervises.
// It satisfies sdk.Transport; see the package documentation for what
// happens when the process dies. Close kills the process.
type Transport struct {
	path string
	cfg  Config
	log  *slog.Logger
	info plugin.Info

	mu        sync.Mutex
	client    *goplugin.Client
	remote    *plugin.Remote // nil while the process is down
	up        chan struct{}  // closed when remote is set; replaced on death
	stderr    *tail
	endpoints map[*endpoint]struct{}
	closed    bool
	restarts  atomic.Int64

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Start runs the plugin executable at path and returns its transport once
// the handshake is done. A plugin built against another SDK protocol
// version is refused with an error wrapping sdk.ErrIncompatible.
func Start(ctx context.Context, path string, cfg Config) (*Transport, error) {
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	t := &Transport{
		path:      path,
		cfg:       cfg,
		log:       sdk.Logger(cfg.Logger).With("plugin", filepath.Base(path)),
		up:        make(chan struct{}),
		endpoints: map[*endpoint]struct{}{},
	}
	if err := t.start(ctx); err != nil {
		return nil, err
	}
	t.info = t.remote.Info()
	t.log = t.log.With(sdk.AttrTransport, t.info.Name)
	sctx, cancel := context.WithCancel(context.Background())
	t.stop = cancel
	t.wg.Add(1)
	go t.supervise(sctx)
	return t, nil
}

// start launches one incarnation of the process. t.mu must not be held.
func (t *Transport) start(ctx context.Context) error {
	cc := &goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake(),
		VersionedPlugins: plugin.VersionedPlugins(),
		Cmd:              exec.Command(t.path),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclogBridge(t.log),
		StartTimeout:     30 * time.Second,
	}
	stderr := &tail{max: 30}
	cc.Stderr = stderr
	if sum, ok := t.cfg.Checksums[filepath.Base(t.path)]; ok {
		cc.SecureConfig = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := goplugin.NewClient(cc)
	fail := func(err error) error {
		client.Kill()
		return err
	}
	rpc, err := client.Client()
	if err != nil {
		if strings.Contains(err.Error(), "ncompatible API version") {
			// go-plugin has no sentinel for this; its message names both versions.
			return fail(fmt.Errorf("plugins: %s was built against an incompatible SDK (this connector speaks transport protocol %d, sdk %s): %w: %v",
				t.path, sdk.ProtocolVersion, sdk.Version, sdk.ErrIncompatible, err))
		}
		return fail(fmt.Errorf("plugins: starting %s: %w (stderr: %s)", t.path, err, stderr))
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		return fail(fmt.Errorf("plugins: %s: %w", t.path, err))
	}
	remote, ok := raw.(*plugin.Remote)
	if !ok {
		return fail(fmt.Errorf("plugins: %s dispensed %T", t.path, raw))
	}
	if t.info.Name != "" && remote.Name() != t.info.Name {
		return fail(fmt.Errorf("plugins: %s now reports name %q, was %q", t.path, remote.Name(), t.info.Name))
	}
	if t.cfg.Settings != nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := remote.Configure(cctx, t.cfg.Settings(remote.Name()))
		cancel()
		if err != nil {
			return fail(fmt.Errorf("plugins: %s (transport %q) refused its settings: %w", t.path, remote.Name(), err))
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fail(sdk.ErrClosed)
	}
	t.client, t.remote, t.stderr = client, remote, stderr
	close(t.up)
	return nil
}

// Name returns the transport name the plugin reports.
func (t *Transport) Name() string { return t.info.Name }

// Info returns what the plugin reported when it first started.
func (t *Transport) Info() plugin.Info { return t.info }

// Multiplexed implements sdk.Multiplexer with what the plugin reported
// when it first started (false for a plugin of an earlier release), so
// that an agent keeps one session to a multiplexing plugin.
func (t *Transport) Multiplexed() bool { return t.info.Capabilities.Multiplexed }

// Capabilities implements sdk.CapabilityReporter with what the plugin
// reported when it first started.
func (t *Transport) Capabilities() sdk.Capabilities { return t.info.Capabilities }

// Path returns the plugin executable's path.
func (t *Transport) Path() string { return t.path }

// Pid returns the process id of the running plugin, or 0 while it is down.
func (t *Transport) Pid() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.client == nil {
		return 0
	}
	if rc := t.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// current waits for a live incarnation, or ctx, or Close.
func (t *Transport) current(ctx context.Context) (*plugin.Remote, error) {
	for {
		t.mu.Lock()
		r, up, closed := t.remote, t.up, t.closed
		t.mu.Unlock()
		switch {
		case closed:
			return nil, sdk.ErrClosed
		case r != nil:
			return r, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, fmt.Errorf("plugins: %s is restarting: %w (%w)", t.info.Name, sdk.ErrTransportUnavailable, ctx.Err())
		}
	}
}

// Listen starts an endpoint in the plugin process that survives restarts
// of the process.
func (t *Transport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := t.current(ctx)
	if err != nil {
		return nil, err
	}
	inner, err := r.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ep := newEndpoint(t, cfg, inner)
	t.mu.Lock()
	t.endpoints[ep] = struct{}{}
	t.mu.Unlock()
	return ep, nil
}

// Dial starts an agent session in the plugin process. Sessions do not
// survive a restart: their calls fail and the agent dials again.
func (t *Transport) Dial(ctx context.Context, cfg sdk.DialConfig) (sdk.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := t.current(ctx)
	if err != nil {
		return nil, err
	}
	return r.Dial(ctx, cfg)
}

// Close stops supervising and kills the plugin process. Endpoints still
// open are closed with it.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	client, remote := t.client, t.remote
	eps := make([]*endpoint, 0, len(t.endpoints))
	for ep := range t.endpoints {
		eps = append(eps, ep)
	}
	t.mu.Unlock()
	t.stop()
	t.wg.Wait()
	for _, ep := range eps {
		ep.Close()
	}
	if client != nil {
		kill(client, false)
	}
	if remote != nil {
		os.RemoveAll(filepath.Dir(remote.StreamSocket()))
	}
	return nil
}

// supervise watches the process and restarts it when it dies or hangs.
func (t *Transport) supervise(ctx context.Context) {
	defer t.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		client := t.client
		t.mu.Unlock()
		reason := ""
		if client.Exited() {
			reason = "exited"
		} else if time.Since(lastPing) >= 2*time.Second {
			lastPing = time.Now()
			if err := ping(client); err != nil {
				reason = "hung: " + err.Error()
			}
		}
		if reason == "" {
			continue
		}
		t.died(reason)
		t.restart(ctx)
	}
}

// kill stops the plugin process and returns its pid. go-plugin's Kill asks
// the plugin to shut down first, which blocks on a hung process, so a
// dead or hung plugin (force) gets SIGKILL first, and any plugin that has
// not gone within 5s gets it anyway.
func kill(client *goplugin.Client, force bool) int {
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	if force && pid > 0 && !client.Exited() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	done := make(chan struct{})
	go func() {
		client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-done
	}
	return pid
}

func ping(client *goplugin.Client) error {
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	go func() { ch <- rpc.Ping() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("no answer to a ping in 5s")
	}
}

// died takes the dead incarnation down.
func (t *Transport) died(reason string) {
	t.mu.Lock()
	client, remote, stderr := t.client, t.remote, t.stderr
	t.remote = nil
	t.up = make(chan struct{})
	eps := make([]*endpoint, 0, len(t.endpoints))
	for ep := range t.endpoints {
		eps = append(eps, ep)
	}
	t.mu.Unlock()
	pid := kill(client, true)
	os.RemoveAll(filepath.Dir(remote.StreamSocket()))
	for _, ep := range eps {
		ep.setInner(nil)
	}
	t.log.Error("transport plugin died; its links failed, restarting it", "reason", reason, "pid", pid, "endpoints", len(eps), "stderr", stderr.String())
}

// restart brings up a new incarnation with backoff and listens every open
// endpoint on it again.
func (t *Transport) restart(ctx context.Context) {
	backoff := t.cfg.MinBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		err := t.start(ctx)
		if err == nil {
			break
		}
		backoff = min(2*backoff, t.cfg.MaxBackoff)
		t.log.Error("restarting transport plugin failed", "err", err, "retry_in", backoff)
	}
	t.restarts.Add(1)
	t.mu.Lock()
	r := t.remote
	eps := make([]*endpoint, 0, len(t.endpoints))
	for ep := range t.endpoints {
		eps = append(eps, ep)
	}
	t.mu.Unlock()
	relisted := 0
	for _, ep := range eps {
		if ep.relisten(ctx, r) {
			relisted++
		}
	}
	t.log.Info("transport plugin restarted", "pid", t.Pid(), "endpoints", relisted, "of", len(eps))
}

// Restarts returns how many times the plugin process was started again
// after it died or hung.
func (t *Transport) Restarts() int64 { return t.restarts.Load() }

var (
	_ sdk.Transport          = (*Transport)(nil)
	_ sdk.Multiplexer        = (*Transport)(nil)
	_ sdk.CapabilityReporter = (*Transport)(nil)
	_ io.Closer              = (*Transport)(nil)
)
