// Package settings loads and validates the connector's settings: the
// legacy JSON settings file, IOFOG_CONNECTOR_* environment variables and
// command-line flags, layered by spf13/viper (flag > environment > file >
// default) and decoded by go-viper/mapstructure with decode hooks for
// durations, port ranges, log levels, lists and checksums.
//
// Every error names the key, the value, where the value came from (a
// flag, an environment variable, the settings file or the default) and
// what is expected, for example
//
//	ports[1]: "7000-" is not a port or a range (settings file /etc/iofog-connector/iofog-connector.conf)
//
// Besides the daemon's settings ([Load]), the package decodes the
// transports.<name> subtrees of the settings file into each built-in
// transport's Config and reads plugins.dir and plugins.checksums; the
// agent and the plugins command read only those ([LoadTransports]).
package settings
