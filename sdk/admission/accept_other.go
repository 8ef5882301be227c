//go:build !linux

package admission

import "syscall"

// osTransientErrnos are the transient accept(2) errors only some systems
// define; none here.
var osTransientErrnos = [...]syscall.Errno{}
