package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/api"
	"github.com/iofog/iofog-connector/api/metrics"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
)

// runDaemon runs the connector until ctx is done or a stop is requested,
// then shuts down: it stops accepting, closes the mappings' sockets and
// flushes the store.
func runDaemon(ctx context.Context, s *settings, log *slog.Logger, rl reloadSource) error {
	started := time.Now()
	raiseOpenFilesLimit(log)
	if s.DevDefaults {
		log.Warn("no settings file; running on built-in dev defaults", "settings_file", defaultSettingsFile,
			"api", s.APIAddress, "ports", devPorts, "data_dir", s.DataDir)
	}
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		return err
	}
	apiToken, apiTLS, err := apiLock(s, tlsCfg, log)
	if err != nil {
		return err
	}
	met := newMetrics(log) // metrics.go
	st, stored, err := store.Open(s.DataDir, store.Options{OnSync: met.ObserveStoreSync})
	if err != nil {
		return fmt.Errorf("data-dir %s: %w", s.DataDir, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("flushing the store", "err", err)
		}
	}()
	transports, stopPlugins, err := loadTransports(ctx, transportOptions{DataDir: s.DataDir, Settings: s.Transports, Logger: log})
	if err != nil {
		return fmt.Errorf("transports: %w", err)
	}
	defer func() {
		if err := stopPlugins(); err != nil {
			log.Warn("stopping plugins", "err", err)
		}
	}()
	names := make([]string, 0, len(transports))
	for n := range transports {
		names = append(names, n)
	}
	slices.Sort(names)
	if transports[s.Transport] == nil {
		return fmt.Errorf("transport: %q is not available (have: %s)", s.Transport, strings.Join(names, ", "))
	}
	pool := ports.New(s.Pool)
	mgr, err := core.New(core.Config{
		BindHost: s.BindHost, Ports: pool, Store: st,
		Transports: transports, DefaultTransport: s.Transport, TLS: tlsCfg,
		PublicWaitTimeout: s.PublicWaitTimeout, Logger: log,
		PublicMaxWaiting: s.PublicMaxWaiting, PublicMaxWaitingPerSource: s.PublicMaxWaitingPerSource,
	})
	if err != nil {
		return err
	}
	defer mgr.Close()
	metricsLn, err := listenMetrics(ctx, s, log)
	if err != nil {
		return err
	}
	defer metricsLn.Close()
	apiLn, err := new(net.ListenConfig).Listen(ctx, "tcp", s.APIAddress)
	if err != nil {
		return fmt.Errorf("api-address: %w", err)
	}
	ctl, err := listenControl(s.DataDir)
	if err != nil {
		apiLn.Close()
		return err
	}
	if err := mgr.Restore(ctx, stored); err != nil {
		log.Error("some stored mappings could not be reopened; they stay stored and show as down", "err", err)
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	d := &daemon{settings: s, mgr: mgr, started: started, transports: names}
	srv := api.New(api.Config{
		Core: mgr, Version: version, Stop: stop, StatusText: d.statusText, Logger: log,
		Token: apiToken, RequireClientCert: s.APIClientCA != "",
	})
	reload := &reloader{src: rl, pool: mgr, api: srv, log: log, cur: *s, token: apiToken} // reload.go
	d.reload = reload.reload
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	log.Info("iofog-connector started", "version", version, "pid", os.Getpid(),
		"api", scheme+"://"+apiLn.Addr().String(), "metrics", metricsLn.URL(), "dev", s.Dev, "settings_file", s.File, "data_dir", s.DataDir,
		"ports", len(s.Pool), "mappings", len(stored), "transport", s.Transport, "transports", strings.Join(names, ","),
		"startup", time.Since(started).Round(time.Millisecond), "api_auth", apiAuthMode(apiToken != "", s.APIClientCA != ""))
	if apiUnprotected(apiLn.Addr(), apiToken != "", s.APIClientCA != "") {
		log.Warn("the API listens beyond loopback with neither api-token nor api-client-ca: anyone who reaches it can list, add and remove mappings and read their passcodes",
			"api", apiLn.Addr().String())
	}
	sdReady(log, len(stored)) // systemd Type=notify (sdnotify.go)

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, apiLn, apiTLS); err != nil {
			errc <- err
			stop()
		}
	}()
	go func() {
		defer wg.Done()
		if err := serveControl(ctx, ctl, d, stop, log); err != nil {
			errc <- err
			stop()
		}
	}()
	wg.Add(1)
	go func() { // SIGHUP (reload.go)
		defer wg.Done()
		reload.run(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := metricsLn.serve(ctx, met, metrics.Sources{Core: mgr, Ports: pool, Transports: transports}, log); err != nil {
			errc <- err
			stop()
		}
	}()
	<-ctx.Done()
	log.Info("shutting down")
	sdStopping(log)
	wg.Wait()
	mgr.Close()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("stopped", "uptime", time.Since(started).Round(time.Second))
	}
	return errors.Join(errs...)
}

// daemon is what the control channel and status text need.
type daemon struct {
	settings   *settings
	mgr        *core.Manager
	started    time.Time
	transports []string
	reload     func(via string) (reloadResult, error) // reload.go
}

// apiLock loads the API token and, with api-client-ca, returns the API's
// own TLS config requiring and verifying client certificates (the agent
// and public ports keep tlsCfg, without client certificates).
func apiLock(s *settings, tlsCfg *tls.Config, log *slog.Logger) (string, *tls.Config, error) {
	token, warn, err := s.Token()
	if err != nil {
		return "", nil, err
	}
	if warn != "" {
		log.Warn(warn)
	}
	pool, err := s.ClientCAs()
	if err != nil || pool == nil {
		return token, tlsCfg, err
	}
	if tlsCfg == nil {
		return "", nil, errors.New("api-client-ca: client certificates need the HTTPS API (dev is true)")
	}
	apiTLS := tlsCfg.Clone()
	apiTLS.ClientCAs = pool
	apiTLS.ClientAuth = tls.RequireAndVerifyClientCert
	return token, apiTLS, nil
}
