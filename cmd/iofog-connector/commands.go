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
)

func newStartCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the connector daemon in the foreground until SIGTERM or SIGINT",
		Args:  cobra.NoArgs,
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
			log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: s.LogLevel}))
			if err := adoptLegacyStore(s, log); err != nil { // adopt.go
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runDaemon(ctx, s, log)
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
			s, err := loadSettings(cmd.Flags())
			if err != nil {
				return err
			}
			if err := controlStop(cmd.Context(), s.DataDir, 15*time.Second); err != nil {
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
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's version, uptime, mappings, free ports, agent links and public connections",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd.Flags())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			cs, err := controlStatusOf(ctx, s.DataDir)
			if err != nil {
				return err
			}
			writeStatus(cmd.OutOrStdout(), cs)
			return nil
		},
	}
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
