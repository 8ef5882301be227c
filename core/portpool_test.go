package core

import (
	"testing"
	"time"
)

// TestSetPortPoolKeepsMappings: after the pool changes, running mappings
// keep their ports and stay listed, new mappings take ports from the new
// pool, and the old ports are not handed out again once released.
func TestSetPortPoolKeepsMappings(t *testing.T) {
	all := freePorts(t, 6)
	f := newFixture(t, t.TempDir(), all[:2])
	old, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1, Heartbeat1: 200 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := f.m.SetPortPool(all[2:6])
	if c.Added != 4 || c.Removed != 2 || c.HeldOutside != 2 || c.Free != 4 {
		t.Fatalf("SetPortPool = %+v", c)
	}
	in := map[int]bool{all[2]: true, all[3]: true, all[4]: true, all[5]: true}
	m2, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1, Heartbeat1: 200 * time.Second})
	if err != nil || !in[m2.Port1] || !in[m2.Port2] {
		t.Fatalf("add after SetPortPool: %+v %v, want ports of %v", m2, err, all[2:6])
	}
	st, err := f.m.Status(old.ID)
	if err != nil || st.Port1 != old.Port1 || st.Port2 != old.Port2 || st.Problem() != "" {
		t.Fatalf("the old mapping after SetPortPool: %+v %v", st, err)
	}
	if err := f.m.Remove(ctx(t), old.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.m.Summary().FreePorts; got != 2 {
		t.Fatalf("free ports %d after removing the old mapping, want 2 (its ports left the pool)", got)
	}
	m3, err := f.m.Add(ctx(t), AddRequest{Type: TypePublic, MaxConnections1: 1, Heartbeat1: 200 * time.Second})
	if err != nil || !in[m3.Port1] || !in[m3.Port2] {
		t.Fatalf("third add: %+v %v, want ports of %v", m3, err, all[2:6])
	}
}
