// Command iofog-connector is the ioFog Connector daemon, its control CLI and
// its agent.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/iofog/iofog-connector/api/control"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is the whole program; it returns the exit code.
func run(args []string) int {
	args = legacyArgs(args)
	root := newRootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "iofog-connector:", err)
	if isUsageError(err) {
		cmd.SetOut(os.Stderr)
		_ = cmd.Help()
		return 2
	}
	return 1
}

// legacyArgs maps the legacy connector's -? to --help.
func legacyArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "-?" {
			a = "--help"
		}
		out[i] = a
	}
	return out
}

// isUsageError reports whether cobra refused the command line itself.
func isUsageError(err error) bool {
	msg := err.Error()
	return !errors.Is(err, control.ErrNotRunning) && (strings.HasPrefix(msg, "unknown command") ||
		strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown shorthand flag") ||
		strings.Contains(msg, "accepts 0 arg(s)") || strings.HasPrefix(msg, "invalid argument") ||
		strings.HasPrefix(msg, "flag needs an argument"))
}
