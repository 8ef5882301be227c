package sdk

// Capabilities are what a [Transport] can do beyond its contract, for a
// caller that cannot probe its streams' optional interfaces in advance
// (an agent choosing how many sessions to keep, a plugin host describing
// the transport it runs; sdk/plugin carries them across the process
// boundary).
type Capabilities struct {
	// Multiplexed: one Session carries many streams ([Multiplexer]).
	Multiplexed bool
	// HalfClose: streams implement [CloseWriter] with a real half-close.
	HalfClose bool
	// Origins: the transport carries a stream's origin from
	// [Endpoint.Open] ([WithOrigin]) to the agent ([OriginStream]).
	Origins bool
}

// CapabilityReporter is an optional interface of a [Transport] that
// reports its [Capabilities].
type CapabilityReporter interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns what t reports through [CapabilityReporter],
// with Multiplexed also set when t is a [Multiplexer] that says so. A
// transport that implements neither reports none.
func CapabilitiesOf(t Transport) Capabilities {
	var c Capabilities
	if r, ok := t.(CapabilityReporter); ok {
		c = r.Capabilities()
	}
	if m, ok := t.(Multiplexer); ok && m.Multiplexed() {
		c.Multiplexed = true
	}
	return c
}
