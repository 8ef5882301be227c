package main

import (
	"net"

	"github.com/spf13/pflag"
)

// addAPIAuthFlags declares the flags of the API lock. The token itself has
// no flag: a command line is readable by every local user (ps); it comes
// from the settings file, IOFOG_CONNECTOR_API_TOKEN or api-token-file.
func addAPIAuthFlags(fs *pflag.FlagSet) {
	fs.String("api-token-file", "", "file holding the bearer token every API request must carry (Authorization: Bearer TOKEN); "+
		"read at start and on SIGHUP, must not be writable by group or others; or set api-token in the settings file or IOFOG_CONNECTOR_API_TOKEN (default: no token)")
	fs.String("api-client-ca", "", "PEM file of the CA(s) whose client certificates the HTTPS API requires and verifies (mutual TLS; not with dev) (default: no client certificate)")
}

// apiUnprotected reports whether an API listening on addr is open to other
// hosts with neither a token nor client certificates: any address but a
// loopback one (the unspecified address listens on every interface).
func apiUnprotected(addr net.Addr, token, clientCA bool) bool {
	if token || clientCA {
		return false
	}
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}

// apiAuthMode names the API lock for the start-up log.
func apiAuthMode(token, clientCA bool) string {
	switch {
	case token && clientCA:
		return "token+client-cert"
	case token:
		return "token"
	case clientCA:
		return "client-cert"
	}
	return "none"
}
