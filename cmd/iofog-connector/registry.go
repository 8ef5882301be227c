package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/iofog/iofog-connector/plugins"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/transports/quic"
	"github.com/iofog/iofog-connector/transports/tcp"
	"github.com/iofog/iofog-connector/transports/yamux"
)

// transportOptions is what the registry needs to build transports.
type transportOptions struct {
	// DataDir is where transports may persist state (the quic transport's
	// dev-mode identity). Empty means they keep nothing.
	DataDir string
	// PluginDir is the directory searched for transport plugins. Empty
	// means no plugins.
	PluginDir string
	// Logger receives the transports' logs.
	Logger *slog.Logger
}

// builtinTransports returns fresh instances of the transports compiled into
// the binary. The first is the default.
func builtinTransports(opts transportOptions) ([]sdk.Transport, error) {
	tcpTransport, err := tcp.New(tcp.Config{}, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("tcp transport: %w", err)
	}
	ts := []sdk.Transport{tcpTransport} // tcp first: the default
	yamuxTransport, err := yamux.New(yamux.Config{}, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("yamux transport: %w", err)
	}
	// quic keeps its dev-mode TLS identity in the data dir, so agents can
	// trust it across restarts (--ca <data dir>/quic-identity.crt).
	quicTransport, err := quic.New(quic.Config{IdentityDir: opts.DataDir}, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("quic transport: %w", err)
	}
	ts = append(ts, yamuxTransport, quicTransport)
	return ts, nil
}

// loadTransports returns every transport available: the built-in ones and
// those of the plugins found in opts.PluginDir, by name, and a func that
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
	loaded, err := plugins.Load(ctx, opts.PluginDir, plugins.Config{Logger: opts.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("loading transport plugins from %q: %w", opts.PluginDir, err)
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
	return byName, func() error { return plugins.CloseAll(loaded) }, nil
}
