package store

import "fmt"

// state is a set of mappings in insertion order, with the owner of every
// port they use.
type state struct {
	mappings map[string]Mapping
	order    []string       // ids in insertion order, with holes for removed ids
	ports    map[int]string // port -> id of the mapping using it
}

func newState() *state {
	return &state{mappings: map[string]Mapping{}, ports: map[int]string{}}
}

// checkFree reports an error when a port of m is used by another mapping.
func (st *state) checkFree(m Mapping) error {
	for _, p := range []int{m.Port1, m.Port2} {
		if owner, ok := st.ports[p]; ok && owner != m.ID {
			return fmt.Errorf("port %d is also used by mapping %q", p, owner)
		}
	}
	return nil
}

// put adds m, replacing the mapping with its id. The caller has checked
// its ports with checkFree.
func (st *state) put(m Mapping) {
	if old, ok := st.mappings[m.ID]; ok {
		st.freePorts(old)
	} else {
		st.order = append(st.order, m.ID)
	}
	st.mappings[m.ID] = m
	st.ports[m.Port1], st.ports[m.Port2] = m.ID, m.ID
}

func (st *state) remove(id string) {
	if old, ok := st.mappings[id]; ok {
		st.freePorts(old)
		delete(st.mappings, id)
		if len(st.order) > 2*len(st.mappings)+1024 {
			st.list() // drop holes
		}
	}
}

func (st *state) freePorts(m Mapping) {
	for _, p := range []int{m.Port1, m.Port2} {
		if st.ports[p] == m.ID {
			delete(st.ports, p)
		}
	}
}

// list returns the mappings in insertion order and drops holes from order.
func (st *state) list() []Mapping {
	out := make([]Mapping, 0, len(st.mappings))
	ids := st.order[:0]
	seen := make(map[string]bool, len(st.mappings))
	for _, id := range st.order {
		if m, ok := st.mappings[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, m)
			ids = append(ids, id)
		}
	}
	st.order = ids
	return out
}

// overlay is a state plus changes not yet applied to it: the writer checks
// a batch of records against it before writing any of them, so that the
// journal never holds a state this package would refuse to load.
type overlay struct {
	base     *state
	mappings map[string]*Mapping // nil: removed in the overlay
	ports    map[int]string      // "": freed in the overlay
}

func newOverlay(base *state) *overlay {
	return &overlay{base: base, mappings: map[string]*Mapping{}, ports: map[int]string{}}
}

func (o *overlay) get(id string) (Mapping, bool) {
	if m, ok := o.mappings[id]; ok {
		if m == nil {
			return Mapping{}, false
		}
		return *m, true
	}
	m, ok := o.base.mappings[id]
	return m, ok
}

func (o *overlay) owner(port int) string {
	if id, ok := o.ports[port]; ok {
		return id
	}
	return o.base.ports[port]
}

// apply checks rec against the overlay and, when it fits, applies it.
func (o *overlay) apply(rec record) error {
	switch rec.Op {
	case opAdd:
		m := *rec.Mapping
		for _, p := range []int{m.Port1, m.Port2} {
			if owner := o.owner(p); owner != "" && owner != m.ID {
				return fmt.Errorf("store: add %s: port %d is used by stored mapping %q", m.ID, p, owner)
			}
		}
		o.free(m.ID)
		o.mappings[m.ID] = &m
		o.ports[m.Port1], o.ports[m.Port2] = m.ID, m.ID
	case opRemove:
		o.free(rec.ID)
		o.mappings[rec.ID] = nil
	}
	return nil
}

func (o *overlay) free(id string) {
	if old, ok := o.get(id); ok {
		for _, p := range []int{old.Port1, old.Port2} {
			if o.owner(p) == id {
				o.ports[p] = ""
			}
		}
	}
}
