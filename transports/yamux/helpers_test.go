package yamux_test

import (
	"context"
	"net"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

func listenAddr(t testing.TB, ep sdk.Endpoint) string {
	t.Helper()
	a, ok := ep.(interface{ Addr() net.Addr })
	if !ok {
		t.Fatalf("%T has no Addr method", ep)
	}
	return a.Addr().String()
}

// checkStreams runs the shared stream check (n streams at once, 64 KiB
// echoed and compared on each, Stats while open and after) and checks that
// all of them rode the one yamux session.
func checkStreams(t *testing.T, ctx context.Context, ep sdk.Endpoint, s sdk.Session, n int) {
	t.Helper()
	transporttest.CheckStreams(t, ctx, ep, s, n)
	if st := ep.(sdk.StatsReporter).Stats(); st.Links != 1 {
		t.Errorf("Stats() = %+v after %d streams on one session, want Links 1", st, n)
	}
}
