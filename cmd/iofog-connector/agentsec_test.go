package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func agentsecEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func agentsecFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passcode")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAgentSecurityConflicts: contradictory TLS choices are refused with
// an error naming both flags.
func TestAgentSecurityConflicts(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	for _, tc := range []struct {
		name string
		in   securityInput
		want []string
	}{
		{"plaintext+ca", securityInput{Plaintext: true, PlaintextSet: "--plaintext", CA: ca}, []string{"--plaintext", "--ca"}},
		{"dev+insecure", securityInput{Plaintext: true, PlaintextSet: "--dev", Insecure: true}, []string{"--dev", "--insecure-skip-verify"}},
		{"plaintext+server-name", securityInput{Plaintext: true, PlaintextSet: "--plaintext", ServerName: "x"}, []string{"--plaintext", "--server-name"}},
		{"insecure+ca", securityInput{Insecure: true, CA: ca}, []string{"--insecure-skip-verify", "--ca"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Passcode, tc.in.PasscodeSet = "p", true
			_, err := resolveSecurity(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// TestAgentSecurityModes: no flag means TLS verified against the system
// roots; --ca a pool; --insecure-skip-verify TLS unverified with a
// warning; --plaintext no TLS with a warning.
func TestAgentSecurityModes(t *testing.T) {
	base := securityInput{PasscodeFile: agentsecFile(t, "p\n"), Getenv: agentsecEnv(nil)}

	s, err := resolveSecurity(base)
	if err != nil || s.TLS == nil || s.TLS.InsecureSkipVerify || s.TLS.RootCAs != nil {
		t.Fatalf("default: %+v %v; want TLS verified against the system roots", s.TLS, err)
	}
	if s.Passcode != "p" || len(s.Warnings) != 0 {
		t.Errorf("default: passcode %q warnings %q", s.Passcode, s.Warnings)
	}

	in := base
	in.Insecure = true
	if s, err = resolveSecurity(in); err != nil || s.TLS == nil || !s.TLS.InsecureSkipVerify || len(s.Warnings) != 1 {
		t.Fatalf("insecure: %+v %v %q", s.TLS, err, s.Warnings)
	}

	in = base
	in.Plaintext, in.PlaintextSet = true, "--plaintext"
	if s, err = resolveSecurity(in); err != nil || s.TLS != nil || len(s.Warnings) != 1 {
		t.Fatalf("plaintext: %+v %v %q", s.TLS, err, s.Warnings)
	}

	// quic in dev mode warns that the connector is not verified, unless
	// a pin names its certificate.
	in = base
	in.Plaintext, in.PlaintextSet, in.Transport = true, "--plaintext", "quic"
	if s, err = resolveSecurity(in); err != nil || len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "NOT verified") {
		t.Fatalf("quic dev unpinned: %v %q", err, s.Warnings)
	}
	in.QuicPinned = true
	if s, err = resolveSecurity(in); err != nil || len(s.Warnings) != 0 || len(s.Infos) != 1 || !strings.Contains(s.Infos[0], "pin-sha256") {
		t.Fatalf("quic dev pinned: %v warnings %q infos %q", err, s.Warnings, s.Infos)
	}

	in = base
	in.CA = agentsecFile(t, "not a certificate")
	if _, err = resolveSecurity(in); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("--ca without a certificate: %v", err)
	}
	in.CA = filepath.Join(t.TempDir(), "missing.pem")
	if _, err = resolveSecurity(in); err == nil || !strings.Contains(err.Error(), "--ca") {
		t.Fatalf("--ca missing: %v", err)
	}
}

// TestAgentPasscodeSources: exactly one of --passcode, --passcode-file and
// IOFOG_AGENT_PASSCODE; a file loses one trailing newline; an empty file,
// no source or two sources are errors; --passcode warns.
func TestAgentPasscodeSources(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       securityInput
		want     string
		wantErr  string
		wantWarn bool
	}{
		{name: "flag", in: securityInput{Passcode: "abc", PasscodeSet: true}, want: "abc", wantWarn: true},
		{name: "empty flag", in: securityInput{Passcode: "", PasscodeSet: true}, wantErr: "--passcode is empty"},
		{name: "file", in: securityInput{PasscodeFile: agentsecFile(t, "abc")}, want: "abc"},
		{name: "file newline", in: securityInput{PasscodeFile: agentsecFile(t, "abc\n")}, want: "abc"},
		{name: "file crlf", in: securityInput{PasscodeFile: agentsecFile(t, "abc\r\n")}, want: "abc"},
		{name: "file two newlines", in: securityInput{PasscodeFile: agentsecFile(t, "abc\n\n")}, wantErr: "more than one line"},
		{name: "file spaces kept", in: securityInput{PasscodeFile: agentsecFile(t, " a b \n")}, want: " a b "},
		{name: "empty file", in: securityInput{PasscodeFile: agentsecFile(t, "")}, wantErr: "empty"},
		{name: "newline only", in: securityInput{PasscodeFile: agentsecFile(t, "\n")}, wantErr: "empty"},
		{name: "huge file", in: securityInput{PasscodeFile: agentsecFile(t, strings.Repeat("a", maxPasscodeFile+1))}, wantErr: "not a passcode"},
		{name: "missing file", in: securityInput{PasscodeFile: "/nonexistent/passcode"}, wantErr: "--passcode-file"},
		{name: "env", in: securityInput{Getenv: agentsecEnv(map[string]string{passcodeEnv: "e"})}, want: "e"},
		{name: "empty env is unset", in: securityInput{Getenv: agentsecEnv(map[string]string{passcodeEnv: ""})}, wantErr: "no passcode"},
		{name: "none", in: securityInput{Getenv: agentsecEnv(nil)}, wantErr: "no passcode"},
		{name: "flag and env", in: securityInput{Passcode: "a", PasscodeSet: true, Getenv: agentsecEnv(map[string]string{passcodeEnv: "e"})}, wantErr: "exactly one"},
		{name: "file and flag", in: securityInput{Passcode: "a", PasscodeSet: true, PasscodeFile: agentsecFile(t, "b")}, wantErr: "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := resolveSecurity(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Passcode != tc.want {
				t.Errorf("passcode %q, want %q", s.Passcode, tc.want)
			}
			warned := false
			for _, w := range s.Warnings {
				warned = warned || strings.Contains(w, "visible to every local user")
			}
			if warned != tc.wantWarn {
				t.Errorf("ps warning %v, want %v (%q)", warned, tc.wantWarn, s.Warnings)
			}
		})
	}
}

// TestAgentTLSHint: TLS failures get a hint naming the flag that fixes
// them; unrelated errors get none.
func TestAgentTLSHint(t *testing.T) {
	for _, tc := range []struct {
		err  error
		tls  bool
		want string
	}{
		{errors.New("tcp: handshake with h: tls: failed to verify certificate: x509: certificate signed by unknown authority"), true, "--ca FILE"},
		{errors.New("quic: dial h: CRYPTO_ERROR 0x12a (local): tls: failed to verify certificate: x509: certificate signed by unknown authority"), true, "--ca FILE"},
		{errors.New("tls: failed to verify certificate: x509: certificate is valid for a.example, not b.example"), true, "--server-name"},
		{fmt.Errorf("tcp: handshake with h: %w", syscall.ECONNRESET), true, "--plaintext"},
		{fmt.Errorf("yamux: dial h: %w", io.EOF), true, "--plaintext"},
		{fmt.Errorf("tcp: handshake with h: tcp: connector closed the connection during the handshake: %w", io.EOF), false, "drop --plaintext"},
		{fmt.Errorf("tcp: link: %w", syscall.ECONNRESET), true, ""},
		{errors.New("tcp: dial h: connection refused"), true, ""},
		{errors.New("bad passcode"), false, ""},
	} {
		got := tlsHint(tc.err, tc.tls)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("tlsHint(%q, tls=%v) = %q, want one containing %q", tc.err, tc.tls, got, tc.want)
		}
	}
}

// TestAgentTLSHintHandler: the agent's log handler adds the hint to a
// record whose err is a TLS failure, also through With, and leaves other
// records alone.
func TestAgentTLSHintHandler(t *testing.T) {
	var b strings.Builder
	log := slog.New(tlsHintHandler{Handler: slog.NewTextHandler(&b, nil), tls: true}).With("transport", "tcp")
	log.Warn("agent link failed; retrying", "err", errors.New("tcp: handshake with h: tls: failed to verify certificate: x509: certificate signed by unknown authority"))
	log.Warn("other", "err", errors.New("connection refused"))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "hint=") || !strings.Contains(lines[0], "--ca FILE") || !strings.Contains(lines[0], "transport=tcp") {
		t.Errorf("first record lacks the hint:\n%s", b.String())
	}
	if len(lines) == 2 && strings.Contains(lines[1], "hint=") {
		t.Errorf("an unrelated error got a hint:\n%s", lines[1])
	}
}
