// Package core is the connector's mapping manager: it creates public and
// private mappings, allocates their ports, hands their agent ports to a
// transport, serves their public ports through core/relay, keeps them in
// core/store and reopens them on start.
package core
