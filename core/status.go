package core

import (
	"fmt"
	"slices"
	"strings"

	"github.com/iofog/iofog-connector/sdk"
)

// Status returns a snapshot of mapping id, or [ErrNotFound].
func (m *Manager) Status(id string) (MappingStatus, error) {
	m.mu.RLock()
	lv := m.mappings[id]
	m.mu.RUnlock()
	if lv == nil {
		return MappingStatus{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return lv.status(), nil
}

// List returns a snapshot of every mapping, sorted by id.
func (m *Manager) List() []MappingStatus {
	m.mu.RLock()
	all := make([]*live, 0, len(m.mappings))
	for _, lv := range m.mappings {
		all = append(all, lv)
	}
	m.mu.RUnlock()
	out := make([]MappingStatus, 0, len(all))
	for _, lv := range all {
		out = append(out, lv.status())
	}
	slices.SortFunc(out, func(a, b MappingStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Summary returns the state of the whole manager.
func (m *Manager) Summary() Summary {
	s := Summary{FreePorts: m.cfg.Ports.Free(), Started: m.started}
	for _, st := range m.List() {
		s.Mappings++
		if st.Type == TypePublic {
			s.PublicMappings++
		}
		s.AgentLinks += st.Side1.Links + st.Side2.Links
		if st.Type == TypePublic {
			s.PublicConns += st.Active
		}
	}
	return s
}

// Down reports why the mapping could not be reopened at start, or ""
// when it runs.
func (st *MappingStatus) Down() string { return st.down }

// Problem reports what is wrong with the running mapping: why it is down,
// or which port stopped accepting (and is being listened again) and why;
// "" when all is well.
func (st *MappingStatus) Problem() string {
	if st.down != "" {
		return st.down
	}
	var errs []string
	for i, s := range []SideStatus{st.Side1, st.Side2} {
		if s.Error != "" {
			errs = append(errs, fmt.Sprintf("port%d (%d): %s", i+1, s.Port, s.Error))
		}
	}
	return strings.Join(errs, "; ")
}

func (lv *live) status() MappingStatus {
	st := MappingStatus{
		Mapping:   lv.m,
		Side1:     sideStatus(lv.ep1, lv.m.Port1),
		Side2:     sideStatus(lv.ep2, lv.m.Port2),
		Active:    lv.counters.Active.Load(),
		Total:     lv.counters.Total.Load(),
		Refused:   lv.counters.Refused.Load(),
		BytesUp:   lv.counters.BytesUp.Load(),
		BytesDown: lv.counters.BytesDown.Load(),

		RefusedNoAgent: lv.counters.RefusedNoAgent.Load(),
		RefusedTooMany: lv.counters.RefusedTooMany.Load(),
		RefusedTLS:     lv.counters.RefusedTLS.Load(),
		RefusedAtLimit: lv.counters.RefusedAtLimit.Load(),
		Waiting:        lv.counters.Waiting.Load(),
	}
	// Stream counts are the relay's own, exact; not the transport's.
	st.Side1.Streams = lv.limits[0].Held()
	st.Side2.Streams = lv.limits[1].Held()
	if lv.m.Type == TypePublic {
		// The public port is active while it listens.
		st.Side2.Active = lv.pub != nil && lv.down == nil
		if p, ok := lv.pub.(*publicListener); ok {
			st.Side2.Error, st.Side2.Restarts = p.health()
			st.Side2.Active = st.Side2.Active && st.Side2.Error == ""
		}
	}
	if lv.down != nil {
		st.down = lv.down.Error()
	}
	return st
}

func sideStatus(ep sdk.Endpoint, port int) SideStatus {
	s := SideStatus{Port: port}
	if r, ok := ep.(sdk.StatsReporter); ok && ep != nil {
		es := r.Stats()
		s.Links, s.IdleLinks, s.Streams, s.Failed = es.Links, es.IdleLinks, es.Streams, es.Failed
		s.FailedByReason = es.FailedByReason
		s.Active = es.Links > 0
	}
	if sl, ok := ep.(*slot); ok && sl != nil {
		s.Error, s.Restarts = sl.health()
	}
	return s
}
