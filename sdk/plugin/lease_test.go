package plugin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// TestFrozenHostEndsItsSessions: the host of an agent session stops
// beating (a host process stopped with SIGSTOP while its plugin runs on);
// the plugin ends the session and aborts its stream within half the
// threshold the connector told (2 s at least), so the connector's side of
// the stream ends with an error, not EOF, and the host's unix connection
// of that stream is closed by the host itself on the plugin's word. A
// host that beats keeps its session across several thresholds.
func TestFrozenHostEndsItsSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	agentHost := remote(t, reftransport.New())
	connectorHost := remote(t, reftransport.New())
	const th = 6 * time.Second // the host may be silent for 3 s
	ep, addr := transporttest.Listen(t, connectorHost, "tcp", sdk.EndpointConfig{HeartbeatThreshold: th})
	s, err := agentHost.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, a := transporttest.Pair(t, ctx, ep, s)
	transporttest.Echo(t, c, a, "through the plugin")
	time.Sleep(th) // a beating host keeps its session
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 1 {
		t.Fatalf("after %v of a beating host: %d links, want 1", th, st.Links)
	}
	plugin.PauseHostBeats(agentHost, true)
	d, err := transporttest.ReadEnd(c, th+5*time.Second)
	if errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("the connector's side of the frozen host's stream ended with %v after %v, want an error within the threshold", err, d)
	}
	t.Logf("the connector's side ended with %q %v after the host stopped beating (threshold %v)", err, d.Round(time.Millisecond), th)
	if d < th/2-time.Second || d > th {
		t.Errorf("it ended %v after the host stopped beating, want about half the %v threshold", d, th)
	}
	// The agent host's own unix connection was closed on the plugin's
	// word: reading it fails at once with net.ErrClosed.
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the frozen host's stream, read after the plugin ended it: %v, want net.ErrClosed", err)
	}
	plugin.PauseHostBeats(agentHost, false)
	if _, err := s.Accept(ctx); err == nil {
		t.Error("Session.Accept on a session the plugin ended succeeded")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
