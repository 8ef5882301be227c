package sdk

// Log attribute keys used across the connector, its transports and plugins,
// so that one query finds one thing everywhere.
const (
	// AttrMappingID is the mapping's id.
	AttrMappingID = "mapping_id"
	// AttrTransport is a transport's name.
	AttrTransport = "transport"
	// AttrPeer is the remote address of a connection.
	AttrPeer = "peer"
	// AttrSide is 1 or 2, the mapping's port1 or port2.
	AttrSide = "side"
	// AttrPort is a port number.
	AttrPort = "port"
)
