package quic_test

import (
	"path/filepath"
	"testing"

	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/quic"
)

// TestQlogDir: with QLOGDIR set, both halves write a qlog trace of their
// connection there (quic-go's qlog.DefaultConnectionTracer), which is how
// the transport's congestion and loss figures in docs/profiles/quic-perf
// were taken.
func TestQlogDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("QLOGDIR", dir)
	c, a := transporttest.Pairs(t, newTransport(t, quic.Config{}), "udp")(t)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	c.Close()
	a.Close()
	for _, side := range []string{"client", "server"} {
		m, _ := filepath.Glob(filepath.Join(dir, "*_"+side+".sqlog"))
		if len(m) == 0 {
			t.Errorf("no %s qlog in QLOGDIR", side)
		}
	}
}
