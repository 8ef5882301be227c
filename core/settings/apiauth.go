package settings

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
)

// Limits of the API token.
const (
	MinAPITokenLen = 16
	MaxAPITokenLen = 4096
)

// CheckAPIToken requires MinAPITokenLen to MaxAPITokenLen printable ASCII
// characters without spaces (what an HTTP header carries unchanged).
func CheckAPIToken(tok string) error {
	if len(tok) < MinAPITokenLen || len(tok) > MaxAPITokenLen {
		return fmt.Errorf("the token has %d characters; it needs %d to %d", len(tok), MinAPITokenLen, MaxAPITokenLen)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return fmt.Errorf("the token has a character that is not printable ASCII or is a space (at byte %d)", i)
		}
	}
	return nil
}

// Token returns the API token, from api-token or read from
// api-token-file, or "" when none is set. The file must be a regular file
// not writable by group or others (anyone who can change it can open the
// API); one readable by them is accepted with a warning (readable is the
// default of Kubernetes secret volumes), returned in warn. Surrounding
// whitespace, such as a final newline, is not part of the token.
func (s *Settings) Token() (token, warn string, err error) {
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
	b, err := io.ReadAll(io.LimitReader(f, MaxAPITokenLen+64))
	if err != nil {
		return "", "", fmt.Errorf("api-token-file: %w", err)
	}
	token = trimSpaceASCII(string(b))
	if token == "" {
		return "", "", fmt.Errorf("api-token-file: %s is empty", s.APITokenFile)
	}
	if err := CheckAPIToken(token); err != nil {
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

// ClientCAs loads api-client-ca; nil when it is not set.
func (s *Settings) ClientCAs() (*x509.CertPool, error) {
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

// TLSConfig loads the server identity (tls-cert, tls-key); nil in dev
// mode.
func (s *Settings) TLSConfig() (*tls.Config, error) {
	if s.Dev {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls-cert/tls-key: %q and %q: %v", s.TLSCert, s.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
