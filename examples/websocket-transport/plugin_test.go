package main_test

import (
	"testing"

	"github.com/iofog/iofog-connector/examples/websocket-transport/websocket"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/plugin/plugintest"
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
	remote := plugintest.Start(t, ".")
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
