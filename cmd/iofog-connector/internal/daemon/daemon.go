package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/api"
	"github.com/iofog/iofog-connector/api/control"
	"github.com/iofog/iofog-connector/api/metrics"
	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/settings"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/reclaim"
)

// Config is what package main hands the daemon.
type Config struct {
	// Settings are the daemon's validated settings (core/settings).
	// Required.
	Settings *settings.Settings
	// Version is the daemon's version, for its logs, metrics and status.
	Version string
	// Logger receives the daemon's logs. Nil means discard.
	Logger *slog.Logger
	// Level is the level of Logger: a reload that changes log-level sets
	// it. Nil means reloads do not change the level.
	Level *slog.LevelVar
	// Transports returns every transport available, by name (the
	// built-in ones and the plugins'), and a func that stops the plugin
	// processes; New calls it once and Close calls the func. Required.
	Transports func(ctx context.Context) (map[string]sdk.Transport, func() error, error)
	// Reload reads the settings again (file, environment and flags, with
	// the usual precedence), for SIGHUP and the control socket's reload.
	// Nil means a reload fails and changes nothing.
	Reload func() (*settings.Settings, error)
	// HUP delivers SIGHUP. Register it before New, so that a SIGHUP sent
	// while the daemon starts waits instead of killing it. Nil means no
	// reload on a signal.
	HUP <-chan os.Signal
}

// Daemon is a loaded daemon with its listeners bound. Create it with
// [New], serve with [Daemon.Run], release it with [Daemon.Close].
type Daemon struct {
	cfg     Config
	s       *settings.Settings
	log     *slog.Logger
	started time.Time

	store       *store.Store
	stored      int // mappings restored from the store
	stopPlugins func() error
	transports  map[string]sdk.Transport
	names       []string // of transports, sorted
	pool        *ports.Allocator
	mgr         *core.Manager
	met         *metrics.Metrics
	metricsLn   *metricsListener
	apiLn       net.Listener
	ctlLn       net.Listener
	tls         bool // the API and the ports speak TLS
	apiTLS      *tls.Config
	apiToken    string

	api      *api.Server
	control  *control.Server
	reloader *reloader

	stopOnce  sync.Once
	stopc     chan struct{} // closed by Stop
	closeOnce sync.Once
}

// New adopts a legacy store if there is one, opens the store, loads the
// transports, starts the mapping manager, binds the metrics, API and
// control listeners and reopens the stored mappings. A stored mapping
// that cannot be reopened is logged and stays stored (shown as down);
// anything else that fails is an error naming what, and what New had
// acquired is released.
func New(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Settings == nil || cfg.Transports == nil {
		return nil, errors.New("daemon: Settings and Transports are required")
	}
	log := sdk.Logger(cfg.Logger)
	s := cfg.Settings
	if err := adoptLegacyStore(s, log); err != nil { // adopt.go
		return nil, err
	}
	d := &Daemon{cfg: cfg, s: s, log: log, started: time.Now(), stopc: make(chan struct{})}
	if err := d.load(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// load is New after the legacy store's adoption, in start-up order.
func (d *Daemon) load(ctx context.Context) error {
	s, log := d.s, d.log
	raiseOpenFilesLimit(log)
	if s.DevDefaults {
		log.Warn("no settings file; running on built-in dev defaults", "settings_file", settings.DefaultFile,
			"api", s.APIAddress, "ports", settings.DevPorts, "data_dir", s.DataDir)
	}
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		return err
	}
	d.tls = tlsCfg != nil
	if d.apiToken, d.apiTLS, err = apiLock(s, tlsCfg, log); err != nil {
		return err
	}
	d.met = metrics.New(metrics.Config{Version: d.cfg.Version, Logger: log})
	st, stored, err := store.Open(s.DataDir, store.Options{OnSync: d.met.ObserveStoreSync})
	if err != nil {
		return fmt.Errorf("data-dir %s: %w", s.DataDir, err)
	}
	d.store, d.stored = st, len(stored)
	d.transports, d.stopPlugins, err = d.cfg.Transports(ctx)
	if err != nil {
		return fmt.Errorf("transports: %w", err)
	}
	d.names = slices.Sorted(maps.Keys(d.transports))
	if d.transports[s.Transport] == nil {
		return fmt.Errorf("transport: %q is not available (have: %s)", s.Transport, strings.Join(d.names, ", "))
	}
	d.pool = ports.New(s.Pool)
	d.mgr, err = core.New(core.Config{
		BindHost: s.BindHost, Ports: d.pool, Store: st,
		Transports: d.transports, DefaultTransport: s.Transport, TLS: tlsCfg,
		PublicWaitTimeout: s.PublicWaitTimeout, Logger: log,
		PublicMaxWaiting: s.PublicMaxWaiting, PublicMaxWaitingPerSource: s.PublicMaxWaitingPerSource,
	})
	if err != nil {
		return err
	}
	if d.metricsLn, err = listenMetrics(ctx, s, log); err != nil {
		return err
	}
	if d.apiLn, err = new(net.ListenConfig).Listen(ctx, "tcp", s.APIAddress); err != nil {
		return fmt.Errorf("api-address: %w", err)
	}
	if d.ctlLn, err = control.Listen(s.DataDir); err != nil {
		return err
	}
	if err := d.mgr.Restore(ctx, stored); err != nil {
		log.Error("some stored mappings could not be reopened; they stay stored and show as down", "err", err)
	}

	rep := status.NewReporter(status.Info{
		Version: d.cfg.Version, Dev: s.Dev, API: s.APIAddress, DataDir: s.DataDir,
		Transport: s.Transport, Transports: d.names,
	}, d.mgr, nil)
	d.api = api.New(api.Config{
		Core: d.mgr, Version: d.cfg.Version, Stop: d.Stop, Status: rep.Daemon, Logger: log,
		Token: d.apiToken, RequireClientCert: s.APIClientCA != "",
	})
	d.reloader = &reloader{hup: d.cfg.HUP, load: d.cfg.Reload, level: d.cfg.Level,
		pool: d.mgr, api: d.api, log: log, cur: *s, token: d.apiToken} // reload.go
	d.control = control.NewServer(control.Config{
		Core: d.mgr, Status: rep.Daemon, Stop: d.Stop, Logger: log,
		Reload: func(context.Context) (control.ReloadResult, error) { return d.reloader.reload("control socket") },
	})
	return nil
}

// Stop asks Run to stop, as the API's commandline stop and the control
// socket's stop do. It returns at once; calling it again does nothing.
func (d *Daemon) Stop() { d.stopOnce.Do(func() { close(d.stopc) }) }

// Run serves the API, the control socket and the metrics and reloads on
// SIGHUP until ctx is done, [Daemon.Stop] is called or a server fails;
// then it stops accepting and closes the mappings' sockets, and returns
// the servers' errors (nil after a clean stop). It tells systemd (Type=
// notify) when it is ready and when it stops. Call it once, then Close.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-d.stopc:
			stop()
		case <-ctx.Done():
		}
	}()
	s, log := d.s, d.log
	scheme := "http"
	if d.tls {
		scheme = "https"
	}
	log.Info("iofog-connector started", "version", d.cfg.Version, "pid", os.Getpid(),
		"api", scheme+"://"+d.apiLn.Addr().String(), "metrics", d.metricsLn.URL(), "dev", s.Dev, "settings_file", s.File, "data_dir", s.DataDir,
		"ports", len(s.Pool), "mappings", d.stored, "transport", s.Transport, "transports", strings.Join(d.names, ","),
		"startup", time.Since(d.started).Round(time.Millisecond), "api_auth", apiAuthMode(d.apiToken != "", s.APIClientCA != ""))
	if apiUnprotected(d.apiLn.Addr(), d.apiToken != "", s.APIClientCA != "") {
		log.Warn("the API listens beyond loopback with neither api-token nor api-client-ca: anyone who reaches it can list, add and remove mappings and read their passcodes",
			"api", d.apiLn.Addr().String())
	}
	sdReady(log, d.stored)   // systemd Type=notify (sdnotify.go)
	go reclaim.WhenIdle(ctx) // memory back to the kernel after bursts

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	serve := func(run func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil {
				errc <- err
				stop()
			}
		}()
	}
	serve(func() error { return d.api.Serve(ctx, d.apiLn, d.apiTLS) })
	serve(func() error { return d.control.Serve(ctx, d.ctlLn) })
	serve(func() error { d.reloader.run(ctx); return nil }) // SIGHUP (reload.go)
	serve(func() error {
		return d.metricsLn.serve(ctx, d.met, metrics.Sources{Core: d.mgr, Ports: d.pool, Transports: d.transports}, log)
	})
	<-ctx.Done()
	log.Info("shutting down")
	sdStopping(log)
	wg.Wait()
	d.mgr.Close()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("stopped", "uptime", time.Since(d.started).Round(time.Second))
	}
	return errors.Join(errs...)
}

// Close releases what New acquired, in reverse order: the listeners, the
// mappings' sockets, the plugin processes and the store, which it flushes.
// It logs what fails (a plugin that does not stop, a store that does not
// flush): at shutdown there is no one else to tell. It is safe to call
// more than once; it does not wait for Run, which must have returned.
func (d *Daemon) Close() {
	d.closeOnce.Do(func() {
		for _, ln := range []net.Listener{d.ctlLn, d.apiLn} {
			if ln != nil {
				ln.Close() // Run's servers closed them already, unless it did not run
			}
		}
		d.metricsLn.Close()
		if d.mgr != nil {
			d.mgr.Close()
		}
		if d.stopPlugins != nil {
			if err := d.stopPlugins(); err != nil {
				d.log.Warn("stopping plugins", "err", err)
			}
		}
		if d.store != nil {
			if err := d.store.Close(); err != nil {
				d.log.Error("flushing the store", "err", err)
			}
		}
	})
}
