package passcode

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/google/uuid"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIsUniqueUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		p := New()
		if !uuidV4.MatchString(p) {
			t.Fatalf("New() = %q, not a UUIDv4", p)
		}
		if seen[p] {
			t.Fatalf("New() repeated %q", p)
		}
		seen[p] = true
	}
}

func TestEqual(t *testing.T) {
	p := New()
	if !Equal(p, p) {
		t.Fatal("Equal(p, p) = false")
	}
	for _, other := range []string{"", p[:len(p)-1], p + "x", New()} {
		if Equal(other, p) {
			t.Fatalf("Equal(%q, %q) = true", other, p)
		}
	}
}

// TestNewIgnoresUUIDGlobalSource: passcodes come from crypto/rand even if
// something in the process replaces the uuid package's global random
// source (uuid.SetRand) with a predictable one.
func TestNewIgnoresUUIDGlobalSource(t *testing.T) {
	uuid.SetRand(bytes.NewReader(make([]byte, 1<<16))) // all zeros
	t.Cleanup(func() { uuid.SetRand(nil) })
	if z := uuid.New().String(); z != "00000000-0000-4000-8000-000000000000" {
		t.Fatalf("uuid.New() = %q with a zero source; the test's premise is wrong", z)
	}
	a, b := New(), New()
	if a == b || a == "00000000-0000-4000-8000-000000000000" || !uuidV4.MatchString(a) {
		t.Fatalf("New() = %q then %q with the uuid global source zeroed, want random UUIDv4s", a, b)
	}
}
