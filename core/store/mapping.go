package store

// Mapping is one stored mapping, in the legacy configs.json format plus
// the extra fields Type and Transport, which legacy readers ignore.
type Mapping struct {
	ID    string `json:"id"`
	Port1 int    `json:"port1"`
	Port2 int    `json:"port2"`
	// MaxConnections1 and MaxConnections2 are the mapping's limits
	// (core.AddRequest.MaxConnections1), under their legacy file keys.
	MaxConnections1                int    `json:"maxconnectionsport1"`
	MaxConnections2                int    `json:"maxconnectionsport2"`
	PasscodePort1                  string `json:"passcodeport1"`
	PasscodePort2                  string `json:"passcodeport2"`
	HeartbeatAbsenceThresholdPort1 int64  `json:"heartbeatabsencethresholdport1"`
	HeartbeatAbsenceThresholdPort2 int64  `json:"heartbeatabsencethresholdport2"`
	// Type is "public" or "private". Empty in legacy files: a mapping
	// without passcodeport2 is public.
	Type string `json:"type,omitempty"`
	// Transport names the transport of the agent ports. Empty means the
	// daemon's default transport.
	Transport string `json:"transport,omitempty"`
	// IdleTimeout is the relay idle timeout in ms. Zero (absent in legacy
	// files) means none.
	IdleTimeout int64 `json:"idletimeout,omitempty"`
	// ProxyProtocol is the PROXY protocol version agents write to their
	// local service, "v1" or "v2", for a public mapping. Empty (absent in
	// legacy files) means none.
	ProxyProtocol string `json:"proxyprotocol,omitempty"`
}

// IsPublic reports whether m is a public mapping.
func (m *Mapping) IsPublic() bool {
	if m.Type != "" {
		return m.Type == "public"
	}
	return m.PasscodePort2 == ""
}

// file is the layout of configs.json.
type file struct {
	Mappings []Mapping `json:"mappings"`
}

// record is one journal line.
type record struct {
	Op      string   `json:"op"` // "add" or "remove"
	ID      string   `json:"id,omitempty"`
	Mapping *Mapping `json:"mapping,omitempty"`
}
