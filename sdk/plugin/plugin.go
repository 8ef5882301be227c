package plugin

import (
	"context"
	"io"
	"sync/atomic"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// PluginName is the key of the transport plugin in [PluginMap].
const PluginName = "transport"

// Handshake returns the go-plugin handshake shared by the connector and
// every transport plugin. Its ProtocolVersion is [sdk.ProtocolVersion]: a
// plugin built against another version of the contract is refused.
func Handshake() goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  sdk.ProtocolVersion,
		MagicCookieKey:   "IOFOG_CONNECTOR_TRANSPORT_PLUGIN",
		MagicCookieValue: "3b0c2f8e-iofog-transport",
	}
}

// PluginMap returns the plugin set a host dispenses from, with no
// implementation (the host side).
func PluginMap() goplugin.PluginSet {
	return goplugin.PluginSet{PluginName: &TransportPlugin{}}
}

// VersionedPlugins returns the plugin sets the host accepts, by protocol
// version. Only [sdk.ProtocolVersion] today; when the contract breaks,
// the previous version stays here for a release.
func VersionedPlugins() map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{sdk.ProtocolVersion: PluginMap()}
}

// TransportPlugin is the go-plugin glue for an [sdk.Transport]. Impl is
// set in the plugin process and nil in the host.
type TransportPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	// Impl is the transport the plugin serves.
	Impl sdk.Transport

	stderr io.Writer              // where the plugin logs; nil: os.Stderr
	srv    atomic.Pointer[server] // the plugin side, once GRPCServer ran
	// onHubFail is called if the stream socket stops for good; set by Serve.
	onHubFail func(error)
}

// GRPCServer registers the transport's gRPC server (plugin side).
func (p *TransportPlugin) GRPCServer(broker *goplugin.GRPCBroker, s *grpc.Server) error {
	srv, err := newServer(p.Impl, broker, pluginLogger(p.stderr), p.onHubFail)
	if err != nil {
		return err
	}
	pb.RegisterTransportServer(s, srv)
	p.srv.Store(srv)
	return nil
}

// GRPCClient returns a *[Remote] over conn (host side).
func (p *TransportPlugin) GRPCClient(ctx context.Context, broker *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return newRemote(ctx, pb.NewTransportClient(conn), broker)
}

var _ goplugin.GRPCPlugin = (*TransportPlugin)(nil)
