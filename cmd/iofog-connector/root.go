package main

import "github.com/spf13/cobra"

// newRootCmd builds the command tree. Each subcommand lives in its own file.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "iofog-connector",
		Short:         "The ioFog Connector: relays edge agents behind NAT to each other and to the internet",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newAgentCmd(),
		newPluginsCmd(),
	)
	return root
}
