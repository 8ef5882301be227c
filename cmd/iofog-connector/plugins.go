package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	csettings "github.com/iofog/iofog-connector/core/settings"
	"github.com/iofog/iofog-connector/plugins"
	"github.com/iofog/iofog-connector/sdk"
)

// newPluginsCmd is `iofog-connector plugins`: it lists the transports
// available, built in and from plugins, with their versions. Plugins are
// started (handshake and name) and stopped again.
func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the transports available (built in and plugins) with their versions",
		Long: `List the transports available: those built into this binary and the
transport plugins (executables named iofog-transport-*) in the plugin
directory, which is --plugin-dir, or else IOFOG_CONNECTOR_PLUGINS_DIR, or
else plugins.dir of the settings file. Plugins are started with the
daemon's checks: with plugins.checksums set, each must match its sum.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The same layer as the daemon (core/settings): flags, then the
			// environment, then the settings file, which may be missing.
			set, err := csettings.LoadTransports(csettings.Source{Flags: cmd.Flags(), DefaultFile: defaultSettingsFile, Transports: transportConfigs()})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			return listTransports(ctx, cmd, *set)
		},
	}
	cmd.Flags().String("plugin-dir", "", "directory of transport plugins (default: plugins.dir of the settings file)")
	cmd.Flags().String("config", "", "settings file to read plugins.dir and plugins.checksums from (default "+defaultSettingsFile+"; env IOFOG_CONNECTOR_CONFIG)")
	return cmd
}

func listTransports(ctx context.Context, cmd *cobra.Command, set csettings.Transports) error {
	builtin, err := builtinTransports(transportOptions{Settings: set})
	if err != nil {
		return err
	}
	type row struct{ name, kind, version, source string }
	var rows []row
	for i, t := range builtin {
		kind := "built-in"
		if i == 0 {
			kind = "built-in (default)"
		}
		rows = append(rows, row{t.Name(), kind, fmt.Sprintf("sdk %s (protocol %d)", sdk.Version, sdk.ProtocolVersion), "-"})
	}
	pcfg, paths, err := pluginConfig(set.PluginDir, set.PluginChecksums, nil)
	if err != nil {
		return err
	}
	var failed error
	for _, p := range paths {
		t, err := plugins.Start(ctx, p, pcfg)
		if err != nil {
			rows = append(rows, row{"?", "plugin (refused)", err.Error(), p})
			failed = errors.Join(failed, err)
			continue
		}
		info := t.Info()
		rows = append(rows, row{info.Name, "plugin", fmt.Sprintf("sdk %s (protocol %d)", info.SDKVersion, info.ProtocolVersion), p})
		t.Close()
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tKIND\tVERSION\tPATH")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.name, r.kind, r.version, r.source)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if failed != nil {
		return fmt.Errorf("some plugins were refused: %w", failed)
	}
	return nil
}
