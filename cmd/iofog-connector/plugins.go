package main

import "github.com/spf13/cobra"

// newPluginsCmd is `iofog-connector plugins` (issue 4).
func newPluginsCmd() *cobra.Command {
	return &cobra.Command{Use: "plugins", Short: "List the transports available"}
}
