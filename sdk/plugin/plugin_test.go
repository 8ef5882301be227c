package plugin_test

import (
	"os"
	"path/filepath"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// remote serves impl over a real gRPC connection in this process, as
// go-plugin would across processes, and returns the host's view of it.
func remote(t testing.TB, impl sdk.Transport) *plugin.Remote {
	t.Helper()
	client, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{
		plugin.PluginName: &plugin.TransportPlugin{Impl: impl},
	})
	// Close shuts the server down too (calling its Stop as well races
	// inside go-plugin).
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	r, ok := raw.(*plugin.Remote)
	if !ok {
		t.Fatalf("Dispense returned %T, want *plugin.Remote", raw)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(r.StreamSocket())) })
	return r
}

func TestRemoteConformance(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return remote(t, reftransport.New()), transporttest.Options{Origins: true}
	})
}

// TestRemoteConformanceTLS runs the suite with TLS: the endpoint's
// certificate crosses to the plugin, and the agent's RootCAs stay in the
// host, which verifies the chains the plugin sees through the broker.
func TestRemoteConformanceTLS(t *testing.T) {
	transporttest.TestTransport(t, func(t *testing.T) (sdk.Transport, transporttest.Options) {
		return remote(t, reftransport.New()), transporttest.Options{TLS: true, Origins: true}
	})
}

func TestRemoteInfo(t *testing.T) {
	r := remote(t, reftransport.New())
	info := r.Info()
	if info.Name != "ref" || info.ProtocolVersion != sdk.ProtocolVersion || info.SDKVersion != sdk.Version {
		t.Fatalf("Info() = %+v, want name ref, protocol %d, sdk %s", info, sdk.ProtocolVersion, sdk.Version)
	}
}
