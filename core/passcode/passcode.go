// Package passcode makes and checks the secrets agents present on the
// connector's agent ports.
package passcode

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
)

// New returns a random UUID (version 4) string drawn from crypto/rand, the
// form the legacy connector and the ioFog Controller use for passcodes.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Equal reports whether got is want, in time that does not depend on
// where they differ.
func Equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
