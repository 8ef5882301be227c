// Command iofog-connector is the ioFog Connector daemon, its control CLI and
// its agent.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is the whole program; it returns the exit code.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "iofog-connector:", err)
		return 1
	}
	return 0
}
