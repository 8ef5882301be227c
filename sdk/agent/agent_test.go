package agent_test

import (
	"context"
	"errors"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// The agent's checks that hold over any transport live in
// sdk/transporttest (AgentPublic, AgentPrivate, AgentProxyHeader), so that
// every transport can run the real agent against itself. Here they run
// over the reference transport (sdk/internal/reftransport: streamkit over
// TCP, one connection per stream, origins carried): sdk/ may not import
// transports/ (TestImportGraph, test imports included). transports/tcp
// runs the same checks over tcp (agent_side_test.go, TestAgentSide*), with
// the pool growth test that needs tcp's lazy shared session.

// TestRunPublicReconnects: the agent starts before the connector listens,
// connects once it does, and reconnects after the connector restarts;
// cancelling its context stops it and returns nil.
func TestRunPublicReconnects(t *testing.T) {
	transporttest.AgentPublic(t, reftransport.New(), transporttest.Options{})
}

// TestRunPrivateListen: each local connection accepted on Listen reaches
// the connector as a stream from Endpoint.Accept, both ways.
func TestRunPrivateListen(t *testing.T) {
	transporttest.AgentPrivate(t, reftransport.New(), transporttest.Options{})
}

func TestInvalidConfig(t *testing.T) {
	tr := reftransport.New()
	ctx := context.Background()
	dial := sdk.DialConfig{Addr: "127.0.0.1:1", Passcode: "pc"}
	for name, err := range map[string]error{
		"public without Local":        agent.RunPublic(ctx, tr, agent.PublicConfig{Dial: dial}),
		"public negative pool":        agent.RunPublic(ctx, tr, agent.PublicConfig{Dial: dial, Local: "x:1", Pool: -1}),
		"public without passcode":     agent.RunPublic(ctx, tr, agent.PublicConfig{Dial: sdk.DialConfig{Addr: "x:1"}, Local: "x:1"}),
		"private with neither":        agent.RunPrivate(ctx, tr, agent.PrivateConfig{Dial: dial}),
		"private with Local & Listen": agent.RunPrivate(ctx, tr, agent.PrivateConfig{Dial: dial, Local: "x:1", Listen: "x:2"}),
		"nil transport":               agent.RunPublic(ctx, nil, agent.PublicConfig{Dial: dial, Local: "x:1"}),
	} {
		if !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want sdk.ErrInvalidConfig", name, err)
		}
	}
}
