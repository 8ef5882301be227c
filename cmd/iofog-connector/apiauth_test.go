package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	csettings "github.com/iofog/iofog-connector/core/settings"
)

// settingsFrom loads a settings file with body and flags.
func settingsFrom(t *testing.T, body string, flags ...string) (*settings, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "iofog-connector.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addConfigFlags(fs)
	if err := fs.Parse(append([]string{"--config", p, "--data-dir", dir}, flags...)); err != nil {
		t.Fatal(err)
	}
	return loadSettings(fs)
}

func TestAPIAuthSettings(t *testing.T) {
	const base = `"ports":["7000-7010"],"dev":%s`
	file := func(dev string, extra string) string {
		return "{" + strings.Replace(base, "%s", dev, 1) + extra + "}"
	}
	for _, tt := range []struct {
		name, body string
		flags      []string
		env        map[string]string
		want       string // error text; "" for success
	}{
		{"none", file("true", ""), nil, nil, ""},
		{"token", file("true", `,"api-token":"0123456789abcdef"`), nil, nil, ""},
		{"token from env", file("true", ""), nil, map[string]string{"IOFOG_CONNECTOR_API_TOKEN": "0123456789abcdef"}, ""},
		{"token short", file("true", `,"api-token":"short"`), nil, nil, "api-token: the token has 5 characters; it needs 16 to 4096"},
		{"token with space", file("true", `,"api-token":"0123456789 abcdef"`), nil, nil, "api-token: the token has a character"},
		{"token not a string", file("true", `,"api-token":1234567890123456789`), nil, nil, "api-token: 1.2345678901234568e+18 is not a string"},
		{"token empty", file("true", `,"api-token":""`), nil, nil, "api-token: is empty"},
		{"token object", file("true", `,"api-token":{"a":1}`), nil, nil, "is not a string"},
		{"both", file("true", `,"api-token":"0123456789abcdef"`), []string{"--api-token-file", "/x"}, nil, "api-token and api-token-file: both are set"},
		{"client CA in dev", file("true", ""), []string{"--api-client-ca", "/ca.pem"}, nil, "api-client-ca: client certificates need the HTTPS API, but dev is true"},
		{"client CA from env in dev", file("true", ""), nil, map[string]string{"IOFOG_CONNECTOR_API_CLIENT_CA": "/ca.pem"}, "api-client-ca"},
		{"empty token file flag", file("true", ""), []string{"--api-token-file", ""}, nil, "api-token-file: is empty"},
		{"client CA with TLS", file("false", ""), []string{"--api-client-ca", "/ca.pem"}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, err := settingsFrom(t, tt.body, tt.flags...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("loadSettings: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadSettings = %+v, %v; want an error with %q", s, err, tt.want)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
}

func TestAPITokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, path, wantTok, wantWarn, wantErr string
	}{
		{"ok with newline", write("ok", "0123456789abcdef-token\n", 0o600), "0123456789abcdef-token", "", ""},
		{"owner read only", write("ro", "0123456789abcdef-token", 0o400), "0123456789abcdef-token", "", ""},
		{"group readable", write("gr", "0123456789abcdef-token", 0o640), "0123456789abcdef-token", "readable by group or others", ""},
		{"world readable", write("wr", "0123456789abcdef-token", 0o644), "0123456789abcdef-token", "readable by group or others", ""},
		{"group writable", write("gw", "0123456789abcdef-token", 0o620), "", "", "writable by group or others"},
		{"world writable", write("ww", "0123456789abcdef-token", 0o602), "", "", "writable by group or others"},
		{"empty", write("empty", "", 0o600), "", "", "is empty"},
		{"whitespace only", write("blank", " \n\t\n", 0o600), "", "", "is empty"},
		{"too short", write("short", "abc\n", 0o600), "", "", "needs 16 to 4096"},
		{"two lines", write("lines", "0123456789abcdef\nsecond-line-xyz\n", 0o600), "", "", "not printable ASCII or is a space"},
		{"too long", write("long", strings.Repeat("a", csettings.MaxAPITokenLen+1), 0o600), "", "", "needs 16 to 4096"},
		{"missing", filepath.Join(dir, "nope"), "", "", "no such file"},
		{"directory", dir, "", "", "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &settings{APITokenFile: tt.path}
			tok, warn, err := s.Token()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "api-token-file: ") {
					t.Fatalf("apiToken = %q, %v; want an error with %q", tok, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "0123456789abcdef") {
					t.Fatalf("error shows the token: %v", err)
				}
				return
			}
			if err != nil || tok != tt.wantTok || !strings.Contains(warn, tt.wantWarn) || (tt.wantWarn == "") != (warn == "") {
				t.Fatalf("apiToken = %q, %q, %v; want %q, warning %q", tok, warn, err, tt.wantTok, tt.wantWarn)
			}
		})
	}
}

func TestAPIClientCAs(t *testing.T) {
	dir := t.TempDir()
	certPEM, _ := e2eWriteCert(t, dir)
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pool, err := (&settings{APIClientCA: good}).ClientCAs(); err != nil || pool == nil {
		t.Fatalf("good CA: %v", err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "missing.pem")} {
		if _, err := (&settings{APIClientCA: p}).ClientCAs(); err == nil || !strings.HasPrefix(err.Error(), "api-client-ca: ") {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if pool, err := (&settings{}).ClientCAs(); pool != nil || err != nil {
		t.Fatalf("unset: %v %v", pool, err)
	}
}
