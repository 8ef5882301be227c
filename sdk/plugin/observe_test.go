package plugin_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/observetransport"
	"github.com/iofog/iofog-connector/sdk/plugin/plugintest"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

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
	testStreamClosed(t, plugintest.Start(t, "./internal/observeplugin"))
}

// TestStreamClosedInProcess runs it over go-plugin's in-process gRPC.
func TestStreamClosedInProcess(t *testing.T) {
	testStreamClosed(t, remote(t, observetransport.New()))
}
