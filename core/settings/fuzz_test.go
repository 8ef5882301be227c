package settings

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
)

// FuzzSettings feeds arbitrary settings files to the loader: it never
// panics, and what it accepts is a usable configuration.
func FuzzSettings(f *testing.F) {
	for _, s := range []string{
		`{"ports":["7000-7999"],"exclude":["7100"],"broker":12345,"address":"127.0.0.1","dev":true}`,
		`{"ports":["21000-21010"],"exclude":[],"broker":12345,"address":"connector.example","dev":false,"api-address":":443"}`,
		`{"ports":[7000,"7001-7002"],"dev":"true","transport":"yamux","public-wait-timeout":"5s","log-level":"debug"}`,
		`{"ports":["7000-7010"],"dev":false,"api-token":"0123456789abcdef","api-client-ca":"/etc/ca.pem"}`,
		`{"ports":["7000-7010"],"dev":true,"api-token":"x","api-token-file":"/t"}`,
		`{"ports":"7000-7010,7020","dev":1,"plugins":{"dir":"/p"},"public-wait-timeout":1500}`,
		`{"ports":["7000-7010"],"transports":{"fast":{"timeout":"1s","window":262144,"hosts":["a"],"limit":2},"ws":{"x":1}}}`,
		`{"ports":["7000-7010"],"plugins":{"checksums":{"iofog-transport-ws":"` + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" + `"}}}`,
		`{"ports":["7000-7010"],"transports":{"fast":{"limit":1e300,"window":-1}}}`,
		`{"ports":["65535-1"]}`, `{"ports":[]}`, `null`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "iofog-connector.conf")
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		fs := daemonFlags()
		if err := fs.Parse([]string{"--config", p, "--data-dir", dir}); err != nil {
			t.Fatal(err)
		}
		s, err := Load(Source{Flags: fs, Transports: testProtos()})
		if err != nil {
			return
		}
		if len(s.Pool) < 2 {
			t.Fatalf("accepted a pool of %d ports", len(s.Pool))
		}
		for _, port := range s.Pool {
			if port < 1 || port > 65535 {
				t.Fatalf("accepted port %d", port)
			}
		}
		if _, port, err := net.SplitHostPort(s.APIAddress); err != nil || port == "" {
			t.Fatalf("accepted api-address %q", s.APIAddress)
		}
		if !sdk.ValidName(s.Transport) {
			t.Fatalf("accepted transport %q", s.Transport)
		}
		if s.PublicWaitTimeout < 0 {
			t.Fatalf("accepted public-wait-timeout %v", s.PublicWaitTimeout)
		}
		if s.APIToken != "" && s.APITokenFile != "" {
			t.Fatal("accepted api-token and api-token-file together")
		}
		if s.APIToken != "" && CheckAPIToken(s.APIToken) != nil {
			t.Fatalf("accepted a bad api-token (%d bytes)", len(s.APIToken))
		}
		if s.APIClientCA != "" && s.Dev {
			t.Fatal("accepted api-client-ca with dev")
		}
		fc, ok := s.Transports.Configs["fast"].(fastConfig)
		if !ok || fc.Validate() != nil || fc.Timeout < 0 {
			t.Fatalf("accepted transports.fast %+v", s.Transports.Configs["fast"])
		}
		for name, sum := range s.Transports.PluginChecksums {
			if len(sum) != 32 {
				t.Fatalf("accepted a checksum of %d bytes for %s", len(sum), name)
			}
		}
		for name := range s.Transports.Plugins {
			if !sdk.ValidName(name) {
				t.Fatalf("accepted transports.%s", name)
			}
		}
	})
}
