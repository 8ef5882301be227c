package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iofog/iofog-connector/plugins"
	"github.com/iofog/iofog-connector/sdk"
)

// defaultConfigPath is where the daemon's settings live (docs/ioFog-contract.md).
const defaultConfigPath = "/etc/iofog-connector/iofog-connector.conf"

// newPluginsCmd is `iofog-connector plugins`: it lists the transports
// available, built in and from plugins, with their versions. Plugins are
// started (handshake and name) and stopped again.
func newPluginsCmd() *cobra.Command {
	var dir, config string
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the transports available (built in and plugins) with their versions",
		Long: `List the transports available: those built into this binary and the
transport plugins (executables named iofog-transport-*) in the plugin
directory, which is --plugin-dir, or else plugins.dir of the settings file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("plugin-dir") {
				d, err := configuredPluginDir(config)
				if err != nil {
					return err
				}
				dir = d
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			return listTransports(ctx, cmd, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "plugin-dir", "", "directory of transport plugins (default: plugins.dir of the settings file)")
	cmd.Flags().StringVar(&config, "config", defaultConfigPath, "settings file to read plugins.dir from when --plugin-dir is not given")
	return cmd
}

// configuredPluginDir reads plugins.dir from the settings file; a missing
// file means no plugin directory.
func configuredPluginDir(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading settings: %w", err)
	}
	var s struct {
		Plugins struct {
			Dir string `json:"dir"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return "", fmt.Errorf("reading settings %s: %w", path, err)
	}
	return s.Plugins.Dir, nil
}

func listTransports(ctx context.Context, cmd *cobra.Command, dir string) error {
	builtin, err := builtinTransports(transportOptions{})
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
	paths, err := plugins.Discover(dir)
	if err != nil {
		return err
	}
	var failed error
	for _, p := range paths {
		t, err := plugins.Start(ctx, p, plugins.Config{})
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
