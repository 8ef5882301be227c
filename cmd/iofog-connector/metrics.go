package main

import (
	"github.com/spf13/pflag"

	csettings "github.com/iofog/iofog-connector/core/settings"
)

// addMetricsFlags declares the metrics flag.
func addMetricsFlags(fs *pflag.FlagSet) {
	fs.String("metrics-address", "", "HOST:PORT of the Prometheus /metrics listener, plain HTTP, no passcodes (default off; "+csettings.DevMetricsAddress+" on dev defaults; \"off\" turns it off; env IOFOG_CONNECTOR_METRICS_ADDRESS)")
}
