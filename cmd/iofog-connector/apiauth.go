package main

import "github.com/spf13/pflag"

// addAPIAuthFlags declares the flags of the API lock. The token itself has
// no flag: a command line is readable by every local user (ps); it comes
// from the settings file, IOFOG_CONNECTOR_API_TOKEN or api-token-file.
func addAPIAuthFlags(fs *pflag.FlagSet) {
	fs.String("api-token-file", "", "file holding the bearer token every API request must carry (Authorization: Bearer TOKEN); "+
		"read at start and on SIGHUP, must not be writable by group or others; or set api-token in the settings file or IOFOG_CONNECTOR_API_TOKEN (default: no token)")
	fs.String("api-client-ca", "", "PEM file of the CA(s) whose client certificates the HTTPS API requires and verifies (mutual TLS; not with dev) (default: no client certificate)")
}
