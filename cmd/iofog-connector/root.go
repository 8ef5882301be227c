package main

import "github.com/spf13/cobra"

// newRootCmd builds the command tree. Each subcommand lives in its own file.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "iofog-connector",
		Short:         "The ioFog Connector: relays edge agents behind NAT to each other and to the internet",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("iofog-connector {{.Version}}\n")
	root.AddCommand(
		newStartCmd(),
		newStopCmd(),
		newStatusCmd(),
		newVersionCmd(),
		newAgentCmd(),
		newPluginsCmd(),
		newHealthCmd(), newGenCertCmd(), // healthcmd.go, gencert.go
		newMappingCmd(), newReloadCmd(), // mappingcmd.go, reloadcmd.go
	)
	return root
}
