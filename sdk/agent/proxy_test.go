package agent_test

import (
	"testing"

	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// TestRunPublicWritesProxyHeader: for a stream whose origin the connector
// sent, the agent writes a PROXY header of the origin's version with the
// client's and the local address, exactly, before the client's bytes; a
// stream without an origin gets none. It runs over the reference
// transport (streamkit), which carries origins; over tcp it is
// transports/tcp TestAgentSideWritesProxyHeader.
func TestRunPublicWritesProxyHeader(t *testing.T) {
	transporttest.AgentProxyHeader(t, reftransport.New(), transporttest.Options{})
}
