package main

import "github.com/spf13/cobra"

// newAgentCmd is `iofog-connector agent public|private` (issue 3).
func newAgentCmd() *cobra.Command {
	return &cobra.Command{Use: "agent", Short: "Expose a local service through the connector"}
}
