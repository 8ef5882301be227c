package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/iofog/iofog-connector/examples/websocket-transport/websocket"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// TestPluginConformance builds this plugin, starts it as a real process
// with go-plugin's handshake, and runs the conformance suite through the
// process boundary.
func TestPluginConformance(t *testing.T) {
	remote := startPlugin(t)
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		// Streams reach the host as *net.UnixConn, so NetConn runs here
		// (the WebSocket framing stays inside the plugin).
		return remote, transporttest.Options{Origins: true}
	})
}

// TestPluginConformanceTLS runs the suite with TLS through the process
// boundary: the endpoint's certificate crosses to the plugin; the agent's
// RootCAs stay here and verify, over the broker, what the plugin sees.
func TestPluginConformanceTLS(t *testing.T) {
	remote := startPlugin(t)
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return remote, transporttest.Options{TLS: true, Origins: true}
	})
}

// startPlugin builds this plugin, starts it as a real process with
// go-plugin's handshake and returns the host's view of it.
func startPlugin(t testing.TB) *plugin.Remote {
	t.Helper()
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
		Logger:           hclog.NewNullLogger(),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	remote := raw.(*plugin.Remote)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(remote.StreamSocket())) })
	if got := remote.Name(); got != "websocket" {
		t.Fatalf("the plugin reports name %q, want websocket", got)
	}
	return remote
}

// BenchmarkStream moves bytes one way through one stream of the WebSocket
// transport (64 KiB writes, transporttest.BenchThroughput): in process,
// and served by the plugin process (the host's stream is a unix socket
// into the plugin, which relays into WebSocket).
func BenchmarkStream(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) {
		transporttest.BenchThroughput(b, transporttest.Pairs(b, websocket.New(), "tcp"))
	})
	b.Run("plugin", func(b *testing.B) {
		transporttest.BenchThroughput(b, transporttest.Pairs(b, startPlugin(b), "tcp"))
	})
}
