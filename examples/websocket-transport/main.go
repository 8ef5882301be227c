// Command iofog-transport-websocket is a transport plugin for
// iofog-connector that carries agent links over WebSocket. Put the binary
// in the connector's plugins.dir (and the agent's --plugin-dir); see
// README.md.
package main

import (
	"github.com/iofog/iofog-connector/examples/websocket-transport/websocket"
	"github.com/iofog/iofog-connector/sdk/plugin"
)

func main() { plugin.Serve(websocket.New()) }
