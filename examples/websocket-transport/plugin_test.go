package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// TestPluginConformance builds this plugin, starts it as a real process
// with go-plugin's handshake, and runs the conformance suite through the
// process boundary.
func TestPluginConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "iofog-transport-websocket")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake(),
		VersionedPlugins: plugin.VersionedPlugins(),
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	remote := raw.(*plugin.Remote)
	defer os.RemoveAll(filepath.Dir(remote.StreamSocket()))
	if got := remote.Name(); got != "websocket" {
		t.Fatalf("the plugin reports name %q, want websocket", got)
	}
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		// Streams reach the host as *net.UnixConn, so NetConn runs here
		// (the WebSocket framing stays inside the plugin).
		return remote, transporttest.Options{}
	})
}
