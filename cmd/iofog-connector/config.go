package main

import (
	"github.com/spf13/pflag"

	csettings "github.com/iofog/iofog-connector/core/settings"
)

// settings is the validated configuration of the daemon (core/settings).
type settings = csettings.Settings

// defaultSettingsFile is where the legacy connector kept its settings.
const defaultSettingsFile = csettings.DefaultFile

// devPorts is the port range of the built-in dev defaults.
const devPorts = csettings.DevPorts

// addConfigFlags declares the flags every daemon-facing command shares.
func addConfigFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "settings file (default "+defaultSettingsFile+"; env IOFOG_CONNECTOR_CONFIG)")
	fs.String("data-dir", "", "directory of configs.json and the control socket (default: the settings file's directory)")
	fs.String("api-address", "", "HOST:PORT of the REST API (default :8080 in dev mode, :443 otherwise; 127.0.0.1:8080 on dev defaults)")
	addAPIAuthFlags(fs)
	addMetricsFlags(fs)
}

// loadSettings reads the settings file, then IOFOG_CONNECTOR_* variables,
// then flags, and validates the result (core/settings), with the
// transports.<name> subtrees decoded into the built-in transports'
// Configs (registry.go).
func loadSettings(fs *pflag.FlagSet) (*settings, error) {
	return csettings.Load(csettings.Source{Flags: fs, DefaultFile: defaultSettingsFile, Transports: transportConfigs()})
}
