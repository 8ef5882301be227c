package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iofog/iofog-connector/api/control"
)

// newReloadCmd is `iofog-connector reload`: the reload SIGHUP triggers,
// asked over the control socket, so that the operator (and systemctl
// reload) learns what changed or why nothing did.
func newReloadCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Reload the running daemon's settings, as SIGHUP does, and print what changed",
		Long: `Reload the running daemon's settings (over its local control socket), as
SIGHUP does, and print what changed. Applied at once, without touching any
mapping or relayed connection: log-level, the port pool (ports, exclude:
new mappings take ports from the new pool, running mappings keep theirs)
and the API token (api-token, or api-token-file read again). Other changed
settings are listed as needing a restart. When the daemon cannot load the
settings nothing changes and the command exits 1 with the reason.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, ctl, err := mappingCtl(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			res, err := ctl.Reload(ctx)
			if err != nil {
				var ae *control.AnswerError
				if errors.As(err, &ae) {
					return fmt.Errorf("reload: the daemon could not load the settings; nothing changed: %s", ae.Message)
				}
				return err
			}
			writeReload(cmd, res)
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

func writeReload(cmd *cobra.Command, res control.ReloadResult) {
	w := cmd.OutOrStdout()
	changed := "nothing changed"
	if len(res.Changed) > 0 {
		changed = strings.Join(res.Changed, "; ")
	}
	fmt.Fprintf(w, "settings reloaded: %s\n", changed)
	for _, k := range res.NeedsRestart {
		fmt.Fprintf(w, "needs a restart, keeps its running value: %s (running %q, new %q)\n", k.Key, k.Running, k.New)
	}
}
