// Package ports hands out the connector's ports: the configured pool minus
// the excluded ports, each port to one holder at a time, lowest first.
// Allocation and release are O(log n) in the pool size, so the daemon stays
// fast with tens of thousands of ports in use.
package ports
