//go:build !linux

package tcp

import "net"

// peerHungUp reports false: outside Linux a link whose reader is paused on
// a full buffer is released only once it is drained.
func peerHungUp(net.Conn) bool { return false }
