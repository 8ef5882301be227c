package transporttest_test

import (
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// TestReference runs the suite against the reference transport (package
// sdk/streamkit over TCP); sdk/streamkit's TestSuiteCatchesFaults shows
// that the suite fails a kit transport that breaks a rule.
func TestReference(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return reftransport.New(), transporttest.Options{Origins: true}
	})
}

func TestReferenceTLS(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return reftransport.New(), transporttest.Options{
			TLS:     true,
			Origins: true,
			Skip: map[string]string{
				// crypto/tls: once a Write times out the conn is broken
				// for good (a permanentError), so nettest's PastTimeout
				// round trip after a timed-out Write cannot pass.
				"NetConn": "*tls.Conn does not survive a timed-out Write (crypto/tls permanentError)",
			},
		}
	})
}
