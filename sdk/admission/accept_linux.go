package admission

import "syscall"

// osTransientErrnos are the transient accept(2) errors only Linux defines.
var osTransientErrnos = [...]syscall.Errno{syscall.ENONET}
