package metrics

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

// Label values of iofog_connector_public_clients_refused_total's reason.
const (
	RefusedNoAgent = "no_agent_in_time" // no agent link came within the wait timeout
	RefusedTooMany = "too_many_waiting" // the waiting caps were full
	RefusedTLS     = "tls_handshake"    // the client's TLS handshake failed
	RefusedAtLimit = "max_connections"  // the mapping held its maxconnections relayed connections for the whole wait timeout
)

// FailureUnknown is the reason label of the handshake failures a
// transport counts without saying why (plugins, for now).
const FailureUnknown = "unknown"

// Label values of iofog_connector_relayed_bytes_total's direction.
const (
	// DirectionUp: from public clients (or side 1 of a private mapping)
	// toward the agent (or side 2).
	DirectionUp = "up"
	// DirectionDown: the other way.
	DirectionDown = "down"
)

// descs are the metrics the collector makes at scrape time.
var (
	descMappings = prometheus.NewDesc("iofog_connector_mappings",
		"Mappings held, by type (public, private) and transport.", []string{"type", "transport"}, nil)
	descPortsFree = prometheus.NewDesc("iofog_connector_ports_free",
		"Ports of the configured range free for new mappings.", nil, nil)
	descPortsUsed = prometheus.NewDesc("iofog_connector_ports_used",
		"Ports of the configured range held by mappings.", nil, nil)
	descPluginRestarts = prometheus.NewDesc("iofog_connector_plugin_restarts_total",
		"Times a transport plugin process was started again after it died or hung.", []string{"transport"}, nil)

	descInfo = prometheus.NewDesc("iofog_connector_mapping_info",
		"Always 1: a mapping's type, transport and ports, to join with the other per-mapping series on mapping_id.",
		[]string{"mapping_id", "type", "transport", "port1", "port2"}, nil)
	descLinks = prometheus.NewDesc("iofog_connector_agent_links",
		"Authenticated agent links open on an agent port of a mapping (side 1 is port1; side 2 is port2 of a private mapping).",
		[]string{"mapping_id", "side"}, nil)
	descWaiting = prometheus.NewDesc("iofog_connector_public_clients_waiting",
		"Public clients of a public mapping accepted and waiting for an agent link.", []string{"mapping_id"}, nil)
	descActive = prometheus.NewDesc("iofog_connector_relayed_connections_active",
		"Connections being relayed now (public clients, or joined private pairs).", []string{"mapping_id"}, nil)
	descTotal = prometheus.NewDesc("iofog_connector_relayed_connections_total",
		"Connections relayed since the mapping was opened in this process.", []string{"mapping_id"}, nil)
	descBytes = prometheus.NewDesc("iofog_connector_relayed_bytes_total",
		"Bytes relayed since the mapping was opened in this process; up is from public clients (or side 1) toward the agent (or side 2), counted as they move.",
		[]string{"mapping_id", "direction"}, nil)
	descFailures = prometheus.NewDesc("iofog_connector_agent_handshake_failures_total",
		"Agent connections to a mapping's agent port that did not become links, by reason (bad_passcode, limit, timeout, closed, protocol, unknown); a reason's series appears at its first failure.",
		[]string{"mapping_id", "side", "reason"}, nil)
	descRefused = prometheus.NewDesc("iofog_connector_public_clients_refused_total",
		"Public clients closed without a relay, by reason (no_agent_in_time, too_many_waiting, tls_handshake); a reason's series appears at its first refusal.",
		[]string{"mapping_id", "reason"}, nil)
	descRestarts = prometheus.NewDesc("iofog_connector_port_restarts_total",
		"Times a mapping's port stopped accepting on its own and was listened again; the series appears at the first restart.",
		[]string{"mapping_id", "side"}, nil)
)

// collector reads the core's snapshots at scrape time: the relay's hot
// path does no work for the metrics.
type collector struct {
	src *atomic.Pointer[Sources]
}

func newCollector(src *atomic.Pointer[Sources]) *collector { return &collector{src: src} }

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMappings, descPortsFree, descPortsUsed, descPluginRestarts,
		descInfo, descLinks, descWaiting, descActive, descTotal, descBytes, descFailures, descRefused, descRestarts} {
		ch <- d
	}
}

var sideLabels = [3]string{"", "1", "2"}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil {
		return
	}
	send := func(d *prometheus.Desc, typ prometheus.ValueType, v float64, labels []string) {
		m, err := prometheus.NewConstMetric(d, typ, v, labels...)
		if err != nil { // never panic in a scrape: report it and serve the rest
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { send(d, prometheus.GaugeValue, v, labels) }
	counter := func(d *prometheus.Desc, v float64, labels ...string) { send(d, prometheus.CounterValue, v, labels) }
	if p := src.Ports; p != nil {
		free := p.Free()
		gauge(descPortsFree, float64(free))
		gauge(descPortsUsed, float64(p.Size()-free))
	}
	names := make([]string, 0, len(src.Transports))
	for name, tr := range src.Transports {
		names = append(names, name)
		if r, ok := tr.(restarter); ok {
			counter(descPluginRestarts, float64(r.Restarts()), name)
		}
	}
	if src.Core == nil {
		return
	}
	type kind struct{ typ, transport string }
	count := make(map[kind]int, 2*len(names))
	for _, n := range names { // every type and transport, zeros included
		count[kind{core.TypePublic, n}] = 0
		count[kind{core.TypePrivate, n}] = 0
	}
	for _, st := range src.Core.List() {
		count[kind{labelValue(st.Type), labelValue(st.Transport)}]++
		c.mapping(&st, gauge, counter)
	}
	keys := make([]kind, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b kind) int {
		return cmp.Or(strings.Compare(a.typ, b.typ), strings.Compare(a.transport, b.transport))
	})
	for _, k := range keys {
		gauge(descMappings, float64(count[k]), k.typ, k.transport)
	}
}

type emit func(d *prometheus.Desc, v float64, labels ...string)

// mapping sends the series of one mapping.
func (c *collector) mapping(st *core.MappingStatus, gauge, counter emit) {
	id := labelValue(st.ID)
	public := st.Type == core.TypePublic
	gauge(descInfo, 1, id, labelValue(st.Type), labelValue(st.Transport), strconv.Itoa(st.Port1), strconv.Itoa(st.Port2))
	gauge(descActive, float64(st.Active), id)
	counter(descTotal, float64(st.Total), id)
	counter(descBytes, float64(st.BytesUp), id, DirectionUp)
	counter(descBytes, float64(st.BytesDown), id, DirectionDown)
	sides := []*core.SideStatus{&st.Side1}
	if !public {
		sides = append(sides, &st.Side2)
	}
	for i, s := range sides {
		side := sideLabels[i+1]
		gauge(descLinks, float64(s.Links), id, side)
		failures(s, func(reason string, n int64) { counter(descFailures, float64(n), id, side, reason) })
		if s.Restarts > 0 {
			counter(descRestarts, float64(s.Restarts), id, side)
		}
	}
	if !public {
		return
	}
	if st.Side2.Restarts > 0 {
		counter(descRestarts, float64(st.Side2.Restarts), id, sideLabels[2])
	}
	gauge(descWaiting, float64(st.Waiting), id)
	for _, r := range [...]struct {
		reason string
		n      int64
	}{{RefusedNoAgent, st.RefusedNoAgent}, {RefusedTooMany, st.RefusedTooMany}, {RefusedTLS, st.RefusedTLS}, {RefusedAtLimit, st.RefusedAtLimit}} {
		if r.n > 0 {
			counter(descRefused, float64(r.n), id, r.reason)
		}
	}
}

// labelValue is s as a label value: valid UTF-8 (core and the store
// already refuse ids that are not; this keeps a scrape whole regardless).
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// failureReasons are the reasons of sdk.EndpointStats.FailedByReason, in
// the order their series are sent.
var failureReasons = [...]string{sdk.FailureBadPasscode, sdk.FailureLimit, sdk.FailureTimeout, sdk.FailureClosed, sdk.FailureProtocol}

// failures calls f for each reason side s counted a failure for; what the
// transport counted without a known reason goes to FailureUnknown.
func failures(s *core.SideStatus, f func(reason string, n int64)) {
	if s.Failed <= 0 {
		return
	}
	rest := s.Failed
	for _, r := range failureReasons {
		if n := s.FailedByReason[r]; n > 0 {
			f(r, n)
			rest -= n
		}
	}
	if rest > 0 {
		f(FailureUnknown, rest)
	}
}

var _ prometheus.Collector = (*collector)(nil)
