package main_test

import (
	"context"
	"io"
	"net"
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
// transport: in process, and served by the plugin process (the host's
// stream is a unix socket into the plugin, which relays into WebSocket).
func BenchmarkStream(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) { benchStream(b, websocket.New()) })
	b.Run("plugin", func(b *testing.B) { benchStream(b, startPlugin(b)) })
}

func benchStream(b *testing.B, tr sdk.Transport) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: addr, Passcode: "p"})
	if err != nil {
		b.Fatal(err)
	}
	defer ep.Close()
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "p"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ach := make(chan net.Conn, 1)
	go func() {
		a, _ := s.Accept(ctx)
		ach <- a
	}()
	c, err := ep.Open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	a := <-ach
	if a == nil {
		b.Fatal("no agent stream")
	}
	defer c.Close()
	defer a.Close()
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, a)
		done <- n
	}()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(sdk.CloseWriter).CloseWrite()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("read %d bytes, want %d", n, b.N*len(buf))
	}
}
