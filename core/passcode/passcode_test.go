package passcode

import (
	"regexp"
	"testing"
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
