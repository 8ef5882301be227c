package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Limits of the API token.
const (
	minAPITokenLen = 16
	maxAPITokenLen = 4096
)

// addAPIAuthFlags declares the flags of the API lock. The token itself has
// no flag: a command line is readable by every local user (ps); it comes
// from the settings file, IOFOG_CONNECTOR_API_TOKEN or api-token-file.
func addAPIAuthFlags(fs *pflag.FlagSet) {
	fs.String("api-token-file", "", "file holding the bearer token every API request must carry (Authorization: Bearer TOKEN); "+
		"read at start and on SIGHUP, must not be writable by group or others; or set api-token in the settings file or IOFOG_CONNECTOR_API_TOKEN (default: no token)")
	fs.String("api-client-ca", "", "PEM file of the CA(s) whose client certificates the HTTPS API requires and verifies (mutual TLS; not with dev) (default: no client certificate)")
}

// bindAPIAuthFlags binds the flags of addAPIAuthFlags that fs has.
func bindAPIAuthFlags(v *viper.Viper, fs *pflag.FlagSet) error {
	for _, key := range []string{"api-token-file", "api-client-ca"} {
		if f := fs.Lookup(key); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// fillAPIAuth reads and checks the settings of the API lock. Files are
// only read by the daemon (apiToken at start and on SIGHUP, apiClientCAs at
// start), so that the CLI commands that share these settings need not read
// them.
func (s *settings) fillAPIAuth(v *viper.Viper) error {
	var err error
	if s.APIToken, err = strictStringKey(v, "api-token"); err != nil {
		return err
	}
	if s.APITokenFile, err = strictStringKey(v, "api-token-file"); err != nil {
		return err
	}
	if s.APIClientCA, err = strictStringKey(v, "api-client-ca"); err != nil {
		return err
	}
	switch {
	case s.APIToken != "" && s.APITokenFile != "":
		return errors.New("api-token and api-token-file: both are set; give one")
	case s.APIToken != "":
		if err := checkAPIToken(s.APIToken); err != nil {
			return fmt.Errorf("api-token: %w", err)
		}
	}
	if s.APIClientCA != "" && s.Dev {
		return fmt.Errorf("api-client-ca: client certificates need the HTTPS API, but dev is true (plain HTTP); unset one of them")
	}
	return nil
}

// strictStringKey reads a string setting. A value of another type or an
// empty string is an error, not "unset": a lock that was asked for and
// could not be read must not silently be off.
func strictStringKey(v *viper.Viper, key string) (string, error) {
	raw := v.Get(key)
	if raw == nil {
		return "", nil
	}
	str, ok := raw.(string)
	switch {
	case !ok:
		return "", fmt.Errorf("%s: %s is not a string", key, quote(raw))
	case str == "" && v.IsSet(key): // not just a flag's default
		return "", fmt.Errorf("%s: is empty; remove the setting to leave it off", key)
	}
	return str, nil
}

// checkAPIToken requires minAPITokenLen to maxAPITokenLen printable ASCII
// characters without spaces (what an HTTP header carries unchanged).
func checkAPIToken(tok string) error {
	if len(tok) < minAPITokenLen || len(tok) > maxAPITokenLen {
		return fmt.Errorf("the token has %d characters; it needs %d to %d", len(tok), minAPITokenLen, maxAPITokenLen)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return fmt.Errorf("the token has a character that is not printable ASCII or is a space (at byte %d)", i)
		}
	}
	return nil
}

// apiToken returns the API token, from api-token or read from
// api-token-file, or "" when none is set. The file must be a regular file
// not writable by group or others (anyone who can change it can open the
// API); one readable by them is accepted with a warning (readable is the
// default of Kubernetes secret volumes), returned in warn. Surrounding
// whitespace, such as a final newline, is not part of the token.
func (s *settings) apiToken() (token, warn string, err error) {
	if s.APITokenFile == "" {
		return s.APIToken, "", nil
	}
	f, err := os.Open(s.APITokenFile)
	if err != nil {
		return "", "", fmt.Errorf("api-token-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("api-token-file: %w", err)
	}
	mode := fi.Mode()
	switch {
	case !mode.IsRegular():
		return "", "", fmt.Errorf("api-token-file: %s is not a regular file", s.APITokenFile)
	case mode.Perm()&0o022 != 0:
		return "", "", fmt.Errorf("api-token-file: %s is writable by group or others (mode %04o); chmod go-w it", s.APITokenFile, mode.Perm())
	case mode.Perm()&0o044 != 0:
		warn = fmt.Sprintf("api-token-file %s is readable by group or others (mode %04o); chmod go-r it unless a secret volume needs that", s.APITokenFile, mode.Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAPITokenLen+64))
	if err != nil {
		return "", "", fmt.Errorf("api-token-file: %w", err)
	}
	token = trimSpaceASCII(string(b))
	if token == "" {
		return "", "", fmt.Errorf("api-token-file: %s is empty", s.APITokenFile)
	}
	if err := checkAPIToken(token); err != nil {
		return "", "", fmt.Errorf("api-token-file: %s: %w", s.APITokenFile, err)
	}
	return token, warn, nil
}

func trimSpaceASCII(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// apiClientCAs loads api-client-ca; nil when it is not set.
func (s *settings) apiClientCAs() (*x509.CertPool, error) {
	if s.APIClientCA == "" {
		return nil, nil
	}
	b, err := os.ReadFile(s.APIClientCA)
	if err != nil {
		return nil, fmt.Errorf("api-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("api-client-ca: %s holds no PEM certificate", s.APIClientCA)
	}
	return pool, nil
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
