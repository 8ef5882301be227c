package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	csettings "github.com/iofog/iofog-connector/core/settings"
	"github.com/iofog/iofog-connector/plugins"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/transports/quic"
	"github.com/iofog/iofog-connector/transports/tcp"
	"github.com/iofog/iofog-connector/transports/yamux"
)

// transportConfigs maps each built-in transport to its zero Config: the
// settings decode transports.<name> into a copy (core/settings).
func transportConfigs() map[string]any {
	return map[string]any{"tcp": tcp.Config{}, "yamux": yamux.Config{}, "quic": quic.Config{}}
}

// transportOptions is what the registry needs to build transports.
type transportOptions struct {
	// DataDir is where transports may persist state (the quic transport's
	// dev-mode identity, unless transports.quic.identity-dir names another
	// directory). Empty means they keep nothing.
	DataDir string
	// Settings are plugins.dir, plugins.checksums and the transports'
	// Configs (transports.<name>). The zero value means defaults and no
	// plugins.
	Settings csettings.Transports
	// Logger receives the transports' logs.
	Logger *slog.Logger
}

// builtinTransports returns fresh instances of the transports compiled into
// the binary, configured by opts.Settings. The first is the default.
func builtinTransports(opts transportOptions) ([]sdk.Transport, error) {
	tcpCfg, _ := opts.Settings.Configs["tcp"].(tcp.Config)
	yamuxCfg, _ := opts.Settings.Configs["yamux"].(yamux.Config)
	quicCfg, _ := opts.Settings.Configs["quic"].(quic.Config)
	tcpTransport, err := tcp.New(tcpCfg, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("tcp transport: %w", err)
	}
	ts := []sdk.Transport{tcpTransport} // tcp first: the default
	yamuxTransport, err := yamux.New(yamuxCfg, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("yamux transport: %w", err)
	}
	// quic keeps its dev-mode TLS identity in the data dir, so agents can
	// trust it across restarts (--ca <data dir>/quic-identity.crt).
	if quicCfg.IdentityDir == "" {
		quicCfg.IdentityDir = opts.DataDir
	}
	quicTransport, err := quic.New(quicCfg, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("quic transport: %w", err)
	}
	ts = append(ts, yamuxTransport, quicTransport)
	return ts, nil
}

// pluginConfig returns how to start the plugins of dir: with
// plugins.checksums set, every plugin must have a sum (one without is
// refused, so a file dropped into the directory does not run), matched by
// file name without case.
func pluginConfig(dir string, sums map[string][]byte, log *slog.Logger) (plugins.Config, []string, error) {
	cfg := plugins.Config{Logger: log}
	paths, err := plugins.Discover(dir)
	if err != nil || len(sums) == 0 {
		return cfg, paths, err
	}
	cfg.Checksums = map[string][]byte{}
	seen := map[string]bool{}
	for _, p := range paths {
		base := filepath.Base(p)
		sum, ok := sums[strings.ToLower(base)]
		if !ok {
			return cfg, nil, fmt.Errorf("plugins.checksums: %s has no sum; every plugin needs one once plugins.checksums is set (sha256sum %s)", p, p)
		}
		cfg.Checksums[base] = sum
		seen[strings.ToLower(base)] = true
	}
	for _, name := range slices.Sorted(maps.Keys(sums)) {
		if !seen[name] {
			sdk.Logger(log).Warn("plugins.checksums names a plugin that is not in plugins.dir", "plugin", name, "dir", dir)
		}
	}
	return cfg, paths, nil
}

// loadTransports returns every transport available: the built-in ones and
// those of the plugins found in plugins.dir, by name, and a func that
// stops the plugin processes. The caller must call it.
func loadTransports(ctx context.Context, opts transportOptions) (map[string]sdk.Transport, func() error, error) {
	builtin, err := builtinTransports(opts)
	if err != nil {
		return nil, nil, err
	}
	byName := make(map[string]sdk.Transport, len(builtin))
	for _, t := range builtin {
		if _, dup := byName[t.Name()]; dup {
			return nil, nil, fmt.Errorf("transport %q registered twice", t.Name())
		}
		byName[t.Name()] = t
	}
	dir := opts.Settings.PluginDir
	pcfg, _, err := pluginConfig(dir, opts.Settings.PluginChecksums, opts.Logger)
	if err != nil {
		return nil, nil, err
	}
	pcfg.Settings = opts.Settings.PluginSettings // transports.<name> of each plugin
	loaded, err := plugins.Load(ctx, dir, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("loading transport plugins from %q: %w", dir, err)
	}
	for _, p := range loaded {
		if _, dup := byName[p.Name()]; dup {
			plugins.CloseAll(loaded)
			return nil, nil, fmt.Errorf("transport plugin %s reports the name %q of a built-in transport", p.Path(), p.Name())
		}
		byName[p.Name()] = p
		sdk.Logger(opts.Logger).Info("transport plugin loaded", sdk.AttrTransport, p.Name(), "path", p.Path(),
			"sdk_version", p.Info().SDKVersion, "pid", p.Pid())
	}
	// Each plugin was given its transports.<name> as it started; settings
	// that reached no transport are refused (core/settings).
	names := make([]string, 0, len(loaded))
	for _, p := range loaded {
		names = append(names, p.Name())
	}
	builtinNames := make([]string, 0, len(builtin))
	for _, t := range builtin {
		builtinNames = append(builtinNames, t.Name())
	}
	if err := opts.Settings.CheckPlugins(slices.Collect(maps.Keys(byName)), builtinNames, names); err != nil {
		plugins.CloseAll(loaded)
		return nil, nil, err
	}
	return byName, func() error { return plugins.CloseAll(loaded) }, nil
}
