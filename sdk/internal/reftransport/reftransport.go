// Package reftransport is a small reference transport that follows the sdk
// contract, used to prove the conformance suite (sdk/transporttest) and the
// plugin boundary (sdk/plugin) before real transports rely on them. It is
// not shipped in the connector.
//
// It is package sdk/streamkit over TCP (TLS when the config has it): the
// kit's wire format, which the WebSocket example speaks inside WebSockets.
//
// Being internal, it has no compatibility promise (see "Stability" in
// package sdk).
package reftransport

import (
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/streamkit"
)

// New returns the reference transport, named "ref".
func New() sdk.Transport {
	return streamkit.New(streamkit.Config{Name: "ref", Listen: streamkit.ListenTCP, Dial: streamkit.DialTCP})
}
