package plugin_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/observetransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// startProcess builds the plugin in dir and starts it as a real process
// with go-plugin's handshake; it returns the host's view of it.
func startProcess(t testing.TB, dir string) *plugin.Remote {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "iofog-transport-test")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, dir).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
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
	r := raw.(*plugin.Remote)
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(r.StreamSocket())) })
	return r
}

// waitStats polls ep's stats until ok accepts them, for at most 10s.
func waitStats(t *testing.T, ep sdk.Endpoint, what string, ok func(sdk.EndpointStats) bool) sdk.EndpointStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := ep.(sdk.StatsReporter).Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats still %+v after 10s", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testStreamClosed: the host-side endpoint of a plugin is an
// sdk.StreamObserver; StreamClosed with a stream it handed out reaches the
// plugin's endpoint (with the very value that endpoint returned, which it
// checks) exactly once; a stream it did not hand out is ignored.
func testStreamClosed(t *testing.T, r *plugin.Remote) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, sess := transporttest.Setup(t, r, "tcp", sdk.EndpointConfig{}, sdk.DialConfig{})
	obs, ok := ep.(sdk.StreamObserver)
	if !ok {
		t.Fatalf("the host's plugin endpoint %T is not an sdk.StreamObserver", ep)
	}
	const n = 3
	var conns []net.Conn
	for range n {
		c, a := transporttest.Pair(t, ctx, ep, sess)
		transporttest.Echo(t, c, a, "hello")
		conns = append(conns, c)
	}
	c, a := transporttest.PrivatePair(t, ctx, ep, sess) // Accept's streams too
	transporttest.Echo(t, c, a, "private")
	conns = append(conns, c)
	waitStats(t, ep, "streams handed out", func(st sdk.EndpointStats) bool { return st.Streams == n+1 })

	conns[0].Close()
	obs.StreamClosed(conns[0])
	obs.StreamClosed(conns[0])       // a second time: ignored by the host
	obs.StreamClosed(&net.TCPConn{}) // not one of its streams: ignored
	st := waitStats(t, ep, "one stream closed", func(st sdk.EndpointStats) bool { return st.Streams == n })
	if st.FailedByReason["observed"] != 1 || st.FailedByReason["unknown"] != 0 {
		t.Fatalf("after one StreamClosed the plugin's endpoint counts %v, want observed 1 and no unknown stream", st.FailedByReason)
	}
	for _, c := range conns[1:] {
		c.Close()
		obs.StreamClosed(c)
	}
	st = waitStats(t, ep, "every stream closed", func(st sdk.EndpointStats) bool { return st.Streams == 0 })
	if st.FailedByReason["observed"] != n+1 || st.FailedByReason["unknown"] != 0 {
		t.Fatalf("the plugin's endpoint counts %v, want observed %d and no unknown stream", st.FailedByReason, n+1)
	}
}

// TestStreamClosedProcess runs testStreamClosed against a real plugin
// process.
func TestStreamClosedProcess(t *testing.T) {
	testStreamClosed(t, startProcess(t, "./internal/observeplugin"))
}

// TestStreamClosedInProcess runs it over go-plugin's in-process gRPC.
func TestStreamClosedInProcess(t *testing.T) {
	testStreamClosed(t, remote(t, observetransport.New()))
}
