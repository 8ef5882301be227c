package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	csettings "github.com/iofog/iofog-connector/core/settings"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/reclaim"
	"github.com/iofog/iofog-connector/transports/quic"
)

// agentFlags are the flags both agent subcommands share.
type agentFlags struct {
	connector    string
	passcode     string
	passcodeFile string
	transport    string
	ca           string
	serverName   string
	insecure     bool
	plaintext    bool
	dev          bool
	logLevel     string
	beat         time.Duration
	threshold    time.Duration

	sec agentSecurity // resolved by resolve
}

func (f *agentFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.connector, "connector", "", "the connector's agent port, HOST:PORT (the mapping's port1, or port2 for the second side of a private pipe)")
	fl.StringVar(&f.passcode, "passcode", "", "the mapping's passcode for that port. Other local users can read it with ps: prefer --passcode-file or "+passcodeEnv)
	fl.StringVar(&f.passcodeFile, "passcode-file", "", "read the passcode from FILE (one line; a trailing newline is ignored; an empty file is refused)")
	fl.StringVar(&f.transport, "transport", "tcp", "transport to use: tcp (default, also what legacy agents speak), yamux, quic, or a plugin's name")
	fl.StringVar(&f.ca, "ca", "", "PEM file with the connector's certificate or its CA; the connector's certificate is verified against it instead of the system's root certificates")
	fl.StringVar(&f.serverName, "server-name", "", "name the connector's certificate must be issued for (default: the host of --connector; an IP address is matched against the certificate's IP addresses)")
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "speak TLS but do NOT verify the connector's certificate: anyone on the path can pose as the connector and learn the passcode (testing only; logged as a warning)")
	fl.BoolVar(&f.plaintext, "plaintext", false, "no TLS, for a connector in dev mode: the passcode and the traffic cross the network in clear (quic, which always encrypts, then accepts the connector's certificate unverified)")
	fl.BoolVar(&f.dev, "dev", false, "same as --plaintext")
	fl.String("plugin-dir", "", "directory of transport plugins (for --transport NAME of a plugin) (default: plugins.dir of --config, or IOFOG_CONNECTOR_PLUGINS_DIR)")
	fl.String("config", "", "settings file to read plugins.dir, plugins.checksums and transports.<name> (such as transports.quic.pin-sha256) from (default: none; env IOFOG_CONNECTOR_CONFIG)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.DurationVar(&f.beat, "heartbeat-interval", 0, "how often idle links beat (default: a quarter of the threshold the connector announces, at least 250 ms; the transport's own default against an older connector)")
	fl.DurationVar(&f.threshold, "heartbeat-threshold", 0, "drop a link silent this long (default: the mapping's threshold, which the connector announces; the transport's own default against an older connector)")
	cmd.MarkFlagRequired("connector")
}

// resolve checks the security flags (and the environment) and keeps what
// they resolve to in f.sec.
func (f *agentFlags) resolve(cmd *cobra.Command, quicPinned bool) error {
	in := securityInput{
		QuicPinned:   quicPinned,
		Transport:    f.transport,
		CA:           f.ca,
		ServerName:   f.serverName,
		Insecure:     f.insecure,
		Plaintext:    f.plaintext || f.dev,
		Passcode:     f.passcode,
		PasscodeSet:  cmd.Flags().Changed("passcode"),
		PasscodeFile: f.passcodeFile,
		Getenv:       os.LookupEnv,
	}
	switch {
	case f.plaintext && f.dev:
		in.PlaintextSet = "--plaintext/--dev"
	case f.dev:
		in.PlaintextSet = "--dev"
	default:
		in.PlaintextSet = "--plaintext"
	}
	if cmd.Flags().Changed("passcode-file") && f.passcodeFile == "" {
		return fmt.Errorf("--passcode-file is empty")
	}
	sec, err := resolveSecurity(in)
	if err != nil {
		return err
	}
	f.sec = sec
	return nil
}

// dialConfig turns the flags into an sdk.DialConfig.
func (f *agentFlags) dialConfig(log *slog.Logger) (sdk.DialConfig, error) {
	if _, _, err := net.SplitHostPort(f.connector); err != nil {
		return sdk.DialConfig{}, fmt.Errorf("--connector %q: %w", f.connector, err)
	}
	cfg := sdk.DialConfig{
		Addr:               f.connector,
		Passcode:           f.sec.Passcode,
		TLS:                f.sec.TLS,
		HeartbeatInterval:  f.beat,
		HeartbeatThreshold: f.threshold,
		Logger:             log,
	}
	return cfg, cfg.Validate()
}

func (f *agentFlags) logger(cmd *cobra.Command) (*slog.Logger, error) {
	lvl, err := csettings.ParseLevel(f.logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	h := slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl})
	return slog.New(tlsHintHandler{Handler: h, tls: f.sec.TLS != nil}), nil
}

// run sets up logging, signals and the transport, then calls serve.
func (f *agentFlags) run(cmd *cobra.Command, serve func(ctx context.Context, t sdk.Transport, dial sdk.DialConfig, log *slog.Logger) error) error {
	// plugins.dir (--plugin-dir), plugins.checksums and transports.<name>
	// from the flags, the environment and --config (core/settings).
	tset, err := csettings.LoadTransports(csettings.Source{Flags: cmd.Flags(), Transports: transportConfigs()})
	if err != nil {
		return err
	}
	q, _ := tset.Configs["quic"].(quic.Config)
	if err := f.resolve(cmd, q.PinSHA256 != ""); err != nil {
		return err
	}
	log, err := f.logger(cmd)
	if err != nil {
		return err
	}
	for _, w := range f.sec.Warnings {
		log.Warn(w)
	}
	for _, i := range f.sec.Infos {
		log.Info(i)
	}
	dial, err := f.dialConfig(log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := startPprof(ctx, log); err != nil { // pprof.go
		return err
	}
	ts, closePlugins, err := loadTransports(ctx, transportOptions{Settings: *tset, Logger: log})
	if err != nil {
		return err
	}
	defer closePlugins()
	t, ok := ts[f.transport]
	if !ok {
		names := make([]string, 0, len(ts))
		for n := range ts {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("--transport %q: unknown; available: %s", f.transport, strings.Join(names, ", "))
	}
	go reclaim.WhenIdle(ctx) // memory back to the kernel after bursts
	return serve(ctx, t, dial, log)
}

// agentSecurityHelp ends the agent commands' help.
const agentSecurityHelp = `Security: the agent speaks TLS and verifies the connector's certificate
unless told otherwise, on every transport. Without --ca it verifies against
the system's root certificates; --ca FILE trusts the connector's certificate
or a private CA instead (--server-name NAME when the certificate is issued
for another name than the host dialled). A connector in dev mode (no TLS)
needs an explicit --plaintext (or --dev); --insecure-skip-verify speaks TLS
without verifying (testing only). Conflicting choices are refused.

The passcode comes from exactly one of --passcode-file FILE, the
` + passcodeEnv + ` environment variable, or --passcode (visible to other
local users with ps).`

// newAgentCmd is `iofog-connector agent public|private`.
func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Expose a local service through the connector",
		Long: `Run the agent side of a mapping: connect to the connector's agent port with
the mapping's passcode and relay streams to or from a local service.

  public   expose a local service on a public mapping's public port
  private  one side of a private pipe between two agents

The agent reconnects with exponential backoff and stops cleanly on SIGINT or
SIGTERM.

` + agentSecurityHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAgentPublicCmd(), newAgentPrivateCmd())
	return cmd
}

func newAgentPublicCmd() *cobra.Command {
	var (
		f     agentFlags
		local string
		pool  int
	)
	cmd := &cobra.Command{
		Use:   "public --connector HOST:PORT (--passcode-file FILE | --passcode P) --local HOST:PORT [--pool N] [--transport NAME] [--ca FILE | --plaintext]",
		Short: "Expose a local service on a public mapping",
		Long: `Keep --pool links open to the connector's agent port (the mapping's port1).
Each public client of the mapping's public port is bound to one link; the
agent then dials --local at once (so services that speak first, like SSH,
work) and relays both ways.

` + agentSecurityHelp,
		Example: `  iofog-connector agent public --connector connector.example:50000 \
    --passcode-file /etc/iofog-agent/passcode --local 127.0.0.1:8080 --ca server-cert.pem
  # a connector in dev mode on this machine
  IOFOG_AGENT_PASSCODE=0b7e... iofog-connector agent public \
    --connector 127.0.0.1:50000 --local 127.0.0.1:8080 --plaintext`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if local == "" {
				return fmt.Errorf("--local is required")
			}
			return f.run(cmd, func(ctx context.Context, t sdk.Transport, dial sdk.DialConfig, log *slog.Logger) error {
				return agent.RunPublic(ctx, t, agent.PublicConfig{Dial: dial, Local: local, Pool: pool, Logger: log})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&local, "local", "", "the local service to expose, HOST:PORT")
	cmd.Flags().IntVar(&pool, "pool", 0, "links kept ready for public clients; sessions for yamux and quic (default 8 links, or 1 session)")
	return cmd
}

func newAgentPrivateCmd() *cobra.Command {
	var (
		f             agentFlags
		local, listen string
		pool          int
	)
	cmd := &cobra.Command{
		Use:   "private --connector HOST:PORT (--passcode-file FILE | --passcode P) (--local HOST:PORT | --listen HOST:PORT) [--transport NAME] [--ca FILE | --plaintext]",
		Short: "Run one side of a private pipe",
		Long: `Connect one side of a private mapping (port1 with passcode1, or port2 with
passcode2). With --local, each stream from the other side is relayed to a
new connection to that service. With --listen, each local connection
accepted there is carried over a new stream to the other side.

` + agentSecurityHelp,
		Example: `  # side 1, next to the service
  iofog-connector agent private --connector c.example:50000 --passcode-file p1 --ca ca.pem --local 127.0.0.1:5432
  # side 2, next to the clients
  iofog-connector agent private --connector c.example:50001 --passcode-file p2 --ca ca.pem --listen 127.0.0.1:15432`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (local == "") == (listen == "") {
				return fmt.Errorf("exactly one of --local and --listen is required")
			}
			return f.run(cmd, func(ctx context.Context, t sdk.Transport, dial sdk.DialConfig, log *slog.Logger) error {
				return agent.RunPrivate(ctx, t, agent.PrivateConfig{
					Dial: dial, Local: local, Listen: listen, Pool: pool, Logger: log,
					Ready: func(a net.Addr) { log.Info("listening for local connections", "addr", a.String()) },
				})
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&local, "local", "", "the local service streams from the other side reach, HOST:PORT")
	cmd.Flags().StringVar(&listen, "listen", "", "where to accept local connections carried to the other side, HOST:PORT")
	cmd.Flags().IntVar(&pool, "pool", 1, "links (sessions for yamux and quic) kept ready for streams from the other side (with --local)")
	return cmd
}
