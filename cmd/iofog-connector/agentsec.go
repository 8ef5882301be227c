package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
)

// passcodeEnv is the environment variable the agent reads its passcode
// from when neither --passcode nor --passcode-file is given.
const passcodeEnv = "IOFOG_AGENT_PASSCODE"

// maxPasscodeFile bounds what --passcode-file reads: a passcode is a short
// line, so anything larger is the wrong file.
const maxPasscodeFile = 4096

// agentSecurity is what the agent's TLS and passcode flags resolve to.
type agentSecurity struct {
	// TLS is the client config; nil means plain connections (--plaintext).
	TLS *tls.Config
	// Passcode is the mapping's passcode, from exactly one source.
	Passcode string
	// Warnings are logged once at start.
	Warnings []string
	// Infos are logged once at start.
	Infos []string
}

// securityInput is the raw flag values (and environment) the agent's
// security settings are resolved from.
type securityInput struct {
	Transport    string
	CA           string
	ServerName   string
	Insecure     bool // --insecure-skip-verify
	Plaintext    bool // --plaintext or --dev
	PlaintextSet string
	Passcode     string
	PasscodeSet  bool // --passcode given, even empty
	PasscodeFile string
	Getenv       func(string) (string, bool)
	// QuicPinned is set when transports.quic.pin-sha256 names the
	// connector's certificate, so quic verifies it even in dev mode.
	QuicPinned bool
}

// resolveSecurity checks the TLS and passcode flags for conflicts and
// builds the client TLS config and the passcode. The agent fails closed:
// without flags it speaks TLS and verifies the connector against the
// system roots.
func resolveSecurity(in securityInput) (agentSecurity, error) {
	var s agentSecurity
	pass, warn, err := resolvePasscode(in)
	if err != nil {
		return s, err
	}
	s.Passcode = pass
	if warn != "" {
		s.Warnings = append(s.Warnings, warn)
	}

	switch {
	case in.Plaintext && in.CA != "":
		return s, fmt.Errorf("%s turns TLS off and --ca asks for TLS verified with a CA: give one of them", in.PlaintextSet)
	case in.Plaintext && in.Insecure:
		return s, fmt.Errorf("%s turns TLS off and --insecure-skip-verify asks for TLS: give one of them", in.PlaintextSet)
	case in.Plaintext && in.ServerName != "":
		return s, fmt.Errorf("%s turns TLS off, so --server-name has nothing to verify: drop one of them", in.PlaintextSet)
	case in.Insecure && in.CA != "":
		return s, errors.New("--insecure-skip-verify skips the verification --ca asks for: give one of them")
	}

	switch {
	case in.Plaintext && in.Transport == "quic" && in.QuicPinned:
		s.Infos = append(s.Infos, "quic: the connector's certificate must match transports.quic.pin-sha256")
		return s, nil
	case in.Plaintext && in.Transport == "quic":
		// QUIC always encrypts: dev mode means the connector's dev
		// identity is accepted without verification (the transport
		// warns too).
		s.Warnings = append(s.Warnings, in.PlaintextSet+": dev mode: quic still encrypts, but the connector's certificate is NOT verified; anyone on the path can pose as the connector and learn the passcode. Verify the dev identity with --ca <data dir>/quic-identity.crt instead")
		return s, nil
	case in.Plaintext:
		s.Warnings = append(s.Warnings, in.PlaintextSet+": TLS is off: the passcode and all relayed bytes cross the network in clear. Use it only with a connector in dev mode on a network you trust")
		return s, nil
	}

	tc := &tls.Config{ServerName: in.ServerName, MinVersion: tls.VersionTLS12}
	switch {
	case in.Insecure:
		tc.InsecureSkipVerify = true
		s.Warnings = append(s.Warnings, "--insecure-skip-verify: TLS WITHOUT VERIFYING THE CONNECTOR'S CERTIFICATE: anyone on the path can pose as the connector, learn the passcode and read the traffic. For testing only; give the connector's certificate or CA with --ca instead")
	case in.CA != "":
		pool, err := readCAFile(in.CA)
		if err != nil {
			return s, err
		}
		tc.RootCAs = pool
		s.Infos = append(s.Infos, "TLS: verifying the connector's certificate against --ca "+in.CA)
	default:
		if _, err := x509.SystemCertPool(); err != nil {
			return s, fmt.Errorf("no --ca given and the system's root certificates cannot be loaded (%v): give the connector's certificate or CA with --ca FILE", err)
		}
		s.Infos = append(s.Infos, "TLS: verifying the connector's certificate against the system's root certificates (no --ca given)")
	}
	s.TLS = tc
	return s, nil
}

// readCAFile reads a PEM file of one or more certificates into a pool.
func readCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// resolvePasscode takes the passcode from exactly one of --passcode,
// --passcode-file and the environment. It returns a warning for
// --passcode, which other local users can read (ps, /proc).
func resolvePasscode(in securityInput) (pass, warning string, err error) {
	env, envSet := "", false
	if in.Getenv != nil {
		env, envSet = in.Getenv(passcodeEnv)
		envSet = envSet && env != ""
	}
	var sources []string
	if in.PasscodeSet {
		sources = append(sources, "--passcode")
	}
	if in.PasscodeFile != "" {
		sources = append(sources, "--passcode-file")
	}
	if envSet {
		sources = append(sources, passcodeEnv)
	}
	switch len(sources) {
	case 0:
		return "", "", fmt.Errorf("no passcode: give the mapping's passcode with --passcode-file FILE, the %s environment variable, or --passcode", passcodeEnv)
	case 1:
	default:
		return "", "", fmt.Errorf("the passcode is given %d times (%s): give exactly one source", len(sources), strings.Join(sources, ", "))
	}
	switch {
	case in.PasscodeSet:
		if in.Passcode == "" {
			return "", "", errors.New("--passcode is empty")
		}
		return in.Passcode, "--passcode on the command line is visible to every local user (ps, /proc/PID/cmdline); prefer --passcode-file or " + passcodeEnv, nil
	case envSet:
		return env, "", nil
	}
	pass, err = readPasscodeFile(in.PasscodeFile)
	return pass, "", err
}

// readPasscodeFile reads a passcode file: its content with one trailing
// newline (\n or \r\n) removed. An empty passcode is refused.
func readPasscodeFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--passcode-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasscodeFile+1))
	if err != nil {
		return "", fmt.Errorf("--passcode-file %s: %w", path, err)
	}
	if len(b) > maxPasscodeFile {
		return "", fmt.Errorf("--passcode-file %s: larger than %d bytes, not a passcode", path, maxPasscodeFile)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", fmt.Errorf("--passcode-file %s: empty", path)
	}
	if bytes.ContainsAny(b, "\r\n") {
		return "", fmt.Errorf("--passcode-file %s: more than one line", path)
	}
	return string(b), nil
}

// tlsHintHandler adds a "hint" to records whose err says why a TLS
// connection to the connector failed: an untrusted certificate, or a
// connector that does not speak TLS (dev mode).
type tlsHintHandler struct {
	slog.Handler
	tls bool // the agent speaks TLS
}

// Handle implements slog.Handler.
func (h tlsHintHandler) Handle(ctx context.Context, r slog.Record) error {
	hint := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "err" {
			return true
		}
		if err, ok := a.Value.Any().(error); ok {
			hint = tlsHint(err, h.tls)
		}
		return false
	})
	if hint != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("hint", hint))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h tlsHintHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return tlsHintHandler{Handler: h.Handler.WithAttrs(as), tls: h.tls}
}

// WithGroup implements slog.Handler.
func (h tlsHintHandler) WithGroup(name string) slog.Handler {
	return tlsHintHandler{Handler: h.Handler.WithGroup(name), tls: h.tls}
}

// tlsHint explains err, a failure to reach the connector, when it comes
// from TLS (usingTLS) or from speaking plain to a TLS connector; "" when
// it has nothing to add. Errors from plugins cross as text, hence the
// string checks.
func tlsHint(err error, usingTLS bool) string {
	msg := err.Error()
	var (
		hostErr x509.HostnameError
		rec     tls.RecordHeaderError
	)
	closed := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(msg, "connection reset by peer")
	inHandshake := strings.Contains(msg, "handshake") || strings.Contains(msg, ": dial ")
	switch {
	case !usingTLS:
		if closed && inHandshake {
			return "the connector closed the connection during the handshake: if it is not in dev mode it requires TLS; drop --plaintext (and give --ca FILE unless its certificate is in the system roots)"
		}
	case errors.As(err, &hostErr) || strings.Contains(msg, "x509: certificate is valid for") || strings.Contains(msg, "x509: certificate is not valid for any names"):
		return "the connector's certificate is not issued for the name dialled: use the name it is issued for in --connector, or --server-name NAME"
	case isCertError(err) || strings.Contains(msg, "x509: ") || strings.Contains(msg, "failed to verify certificate"):
		return "the connector's certificate is not trusted: give its certificate or CA with --ca FILE (a dev-mode quic connector: its data dir's quic-identity.crt)"
	case errors.As(err, &rec) || strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the connector does not answer in TLS: if it runs in dev mode (no TLS), pass --plaintext"
	case closed && inHandshake:
		return "the connector closed the connection during the TLS handshake: if it runs in dev mode (no TLS), pass --plaintext; otherwise check the connector's logs"
	}
	return ""
}

// isCertError reports whether err is a certificate verification failure.
func isCertError(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		inv x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &inv)
}
