// Package plugintest runs a transport plugin as the connector does, for
// the plugin's own tests: it builds the plugin's main package, starts it
// as a real process with go-plugin's handshake and mutual TLS, and hands
// back the host's view of it, an [sdk.Transport] that the conformance
// suite (sdk/transporttest) and the agent checks can run against.
//
// This package is a kit, not part of the stable contract (see "Stability"
// in package sdk): transports and tools may use it, and any release may
// change its API; make api-check reports such changes for the release
// notes.
package plugintest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/iofog/iofog-connector/sdk/plugin"
)

// Start builds the main package in dir (a path go build accepts, such as
// "." or "./cmd/myplugin"), starts it and returns the host's side of it.
// The build may take up to 3 minutes. The process is killed, and its
// stream socket removed, when tb's test ends.
func Start(tb testing.TB, dir string) *plugin.Remote {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "iofog-transport-under-test")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, dir).CombinedOutput(); err != nil {
		tb.Fatalf("plugintest: go build %s: %v\n%s", dir, err, out)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake(),
		VersionedPlugins: plugin.VersionedPlugins(),
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.NewNullLogger(),
	})
	tb.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		tb.Fatalf("plugintest: starting the plugin %s: %v", dir, err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		tb.Fatalf("plugintest: Dispense: %v", err)
	}
	r, ok := raw.(*plugin.Remote)
	if !ok {
		tb.Fatalf("plugintest: the plugin dispensed a %T, not a *plugin.Remote", raw)
	}
	tb.Cleanup(func() { os.RemoveAll(filepath.Dir(r.StreamSocket())) })
	return r
}
