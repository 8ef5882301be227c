package transporttest_test

import (
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

func TestReference(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return refTransport{}, transporttest.Options{}
	})
}

func TestReferenceTLS(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return refTransport{}, transporttest.Options{
			TLS: true,
			Skip: map[string]string{
				// crypto/tls: once a Write times out the conn is broken
				// for good (a permanentError), so nettest's PastTimeout
				// round trip after a timed-out Write cannot pass.
				"NetConn": "*tls.Conn does not survive a timed-out Write (crypto/tls permanentError)",
			},
		}
	})
}
