package admission

import (
	"syscall"
	"testing"
)

// ENONET, which only Linux defines, is transient there too.
func TestTransientLinuxOnly(t *testing.T) {
	if !Transient(acceptErr(syscall.ENONET)) {
		t.Error("Transient(accept: ENONET) = false, want true")
	}
	if Transient(acceptErr(syscall.ENOTSOCK)) {
		t.Error("Transient(accept: ENOTSOCK) = true, want false")
	}
}
