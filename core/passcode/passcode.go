// Package passcode makes and checks the secrets agents present on the
// connector's agent ports, and the ids of mappings.
package passcode

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"

	"github.com/google/uuid"
)

// New returns a random UUID (version 4, RFC 9562) in its canonical
// lower-case 8-4-4-4-12 form, the form the legacy connector and the ioFog
// Controller use for passcodes and mapping ids. Its 122 random bits come
// from crypto/rand directly (uuid.NewRandomFromReader), not from the uuid
// package's replaceable global source or its optional pool.
func New() string {
	id, err := uuid.NewRandomFromReader(rand.Reader)
	if err != nil {
		// crypto/rand.Reader does not fail (Go 1.24+); a secret must
		// never come from anything weaker, so fail closed.
		panic(fmt.Sprintf("passcode: reading crypto/rand: %v", err))
	}
	return id.String()
}

// Equal reports whether got is want, in time that does not depend on
// where they differ.
func Equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
