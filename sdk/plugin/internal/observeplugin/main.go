// Command observeplugin serves observetransport as a plugin, for the tests
// of package sdk/plugin.
package main

import (
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/observetransport"
)

func main() { plugin.Serve(observetransport.New()) }
