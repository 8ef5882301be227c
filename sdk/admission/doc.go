// Package admission holds the building blocks that keep a listening
// socket of the connector alive and quiet under floods:
//
//   - [Retry] and [Transient] keep an accept loop running through
//     transient accept errors (out of descriptors, out of buffers, an
//     aborted connection): the loop backs off from 5 ms to 1 s and logs
//     one WARN line per episode, not per retry, and one INFO line when it
//     accepts again.
//   - [Limiter] caps what one source (an IP address, an IPv6 /64) holds
//     at once, such as unauthenticated handshakes or public clients
//     waiting for an agent link; [Source] names the source of an address.
//   - [Tally] logs events that an attacker can repeat at will (failed
//     handshakes, refusals) in aggregate: one line per source per interval
//     with the count and the last reason, with a bounded number of tracked
//     sources.
//   - [Gate] puts the last two together for an endpoint that agents
//     connect to: a per-source cap on pending handshakes, the tally of
//     failed and refused connections, and how the accept loop ended.
//
// The package imports the standard library only. Every type is safe for
// concurrent use except [Retry], which belongs to one loop.
//
// This package is a kit, not part of the stable contract (see "Stability"
// in package sdk): transports and tools may use it, and any release may
// change its API; make api-check reports such changes for the release
// notes.
package admission
