package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/iofog/iofog-connector/cmd/iofog-connector/internal/daemon"
	"github.com/iofog/iofog-connector/sdk"
)

func newStartCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the connector daemon in the foreground until SIGTERM or SIGINT (SIGHUP reloads the settings)",
		Long: `Run the connector daemon in the foreground until SIGTERM or SIGINT.

SIGHUP reloads the settings and applies log-level, the port pool (ports,
exclude: new mappings take ports from the new pool, running mappings keep
theirs) and the API token (api-token, or api-token-file read again), without
touching any mapping or relayed connection. Other changed settings are named
in a warning and need a restart; settings that do not load change nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd.Flags())
			if err != nil {
				return err
			}
			var out io.Writer = os.Stderr
			if s.LogFile != "" {
				f, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
				if err != nil {
					return fmt.Errorf("log-file: %w", err)
				}
				defer f.Close()
				out = f
			}
			level := new(slog.LevelVar) // a reload sets it
			level.Set(s.LogLevel)
			log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
			// SIGHUP is registered before start-up, so that one sent while
			// the daemon starts waits instead of killing it.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if err := startPprof(ctx, log); err != nil { // pprof.go
				return err
			}
			d, err := daemon.New(ctx, daemon.Config{
				Settings: s, Version: version, Logger: log, Level: level, HUP: hup,
				Reload: func() (*settings, error) { return loadSettings(cmd.Flags()) },
				Transports: func(ctx context.Context) (map[string]sdk.Transport, func() error, error) {
					return loadTransports(ctx, transportOptions{DataDir: s.DataDir, Settings: s.Transports, Logger: log}) // registry.go
				},
			})
			if err != nil {
				return err
			}
			defer d.Close()
			return d.Run(ctx)
		},
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

func newStopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the running daemon (over its local control socket)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, ctl, err := mappingCtl(cmd)
			if err != nil {
				return err
			}
			if err := ctl.Stop(cmd.Context(), 15*time.Second); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "iofog-connector stopped")
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the running daemon's version, uptime, mappings, free ports, agent links and public connections",
		Long: `Show the running daemon's state, read over its local control socket.

JSON output (--json) has stable field names; fields are only ever added:
  version, pid, uptime, dev, api, dataDir, transport, transports, freePorts,
  agentLinks, publicConnections, goroutines, and mappings: [{id, type,
  transport, port1, port2, state1, state2 ("Active"|"Inactive"), links,
  connections, total, down, error, refused, failedHandshakes}].
  iofog-connector mapping ls --json has more per mapping.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, ctl, err := mappingCtl(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			st, err := ctl.Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			st.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	addConfigFlags(cmd.Flags())
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "iofog-connector", version)
		},
	}
}
