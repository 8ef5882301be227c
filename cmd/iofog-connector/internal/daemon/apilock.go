package daemon

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"

	"github.com/iofog/iofog-connector/core/settings"
)

// apiLock loads the API token and, with api-client-ca, returns the API's
// own TLS config requiring and verifying client certificates (the agent
// and public ports keep tlsCfg, without client certificates).
func apiLock(s *settings.Settings, tlsCfg *tls.Config, log *slog.Logger) (string, *tls.Config, error) {
	token, warn, err := s.Token()
	if err != nil {
		return "", nil, err
	}
	if warn != "" {
		log.Warn(warn)
	}
	pool, err := s.ClientCAs()
	if err != nil || pool == nil {
		return token, tlsCfg, err
	}
	if tlsCfg == nil {
		return "", nil, errors.New("api-client-ca: client certificates need the HTTPS API (dev is true)")
	}
	apiTLS := tlsCfg.Clone()
	apiTLS.ClientCAs = pool
	apiTLS.ClientAuth = tls.RequireAndVerifyClientCert
	return token, apiTLS, nil
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
