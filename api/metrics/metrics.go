// Package metrics exposes the connector's Prometheus metrics: a collector
// that reads the core's snapshots when scraped, a histogram of the store's
// fsync latency, build information and the Go runtime and process
// metrics, on a registry of its own, served over plain HTTP on a listener
// of its own (see [Metrics.Serve]).
//
// The metrics carry no passcode and no API token: only mapping ids,
// ports, types, transports and counts. Every name is prefixed
// "iofog_connector_"; the per-mapping series carry a mapping_id label.
// A counter that is still zero (a failure or refusal reason that never
// happened, a port that never restarted) has no series yet, so that a
// scrape of 10,000 healthy mappings stays small.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Core is what the metrics read from the mapping manager at scrape time.
// *core.Manager has it.
type Core interface {
	// List returns a snapshot of every mapping.
	List() []core.MappingStatus
}

// PortPool is the port allocator's part the metrics read. *ports.Allocator
// has it.
type PortPool interface {
	// Free returns how many ports of the pool are free.
	Free() int
	// Size returns how many ports the pool has.
	Size() int
}

// restarter is implemented by transports that restart a process of their
// own (plugins.Transport).
type restarter interface {
	Restarts() int64
}

// Sources are what the collector reads at scrape time. Every field may
// be nil: its metrics are then left out.
type Sources struct {
	Core       Core
	Ports      PortPool
	Transports map[string]sdk.Transport
}

// Config configures [New].
type Config struct {
	// Version is the connector's version, reported by
	// iofog_connector_build_info.
	Version string
	// Logger receives the server's logs. Nil discards.
	Logger *slog.Logger
}

// Metrics is the connector's metrics registry. Create it with [New]
// before the store (its [Metrics.ObserveStoreSync] is the store's
// Options.OnSync), then give it what it reads with [Metrics.Watch].
type Metrics struct {
	reg       *prometheus.Registry
	storeSync prometheus.Histogram
	src       atomic.Pointer[Sources]
	log       *slog.Logger
	handler   http.Handler
}

// StoreSyncBuckets are the upper bounds, in seconds, of the store fsync
// latency histogram: from 100 µs (a fast SSD with a write cache) to 2.5 s
// (a stalled disk).
var StoreSyncBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// New returns the metrics of one connector, on a registry of its own
// (never prometheus.DefaultRegisterer).
func New(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: sdk.Logger(cfg.Logger)}
	m.storeSync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "iofog_connector_store_sync_duration_seconds",
		Help:    "How long each fsync of the mapping store's journal took (one per batch of mapping changes).",
		Buckets: StoreSyncBuckets,
	})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "iofog_connector_build_info",
		Help:        "Always 1; the labels say which version of the connector runs, built with which Go.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(m.storeSync, build, newCollector(&m.src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes at once beyond this get 503: a scrape of 10,000
		// mappings costs tens of milliseconds of CPU.
		MaxRequestsInFlight: 2,
		Timeout:             30 * time.Second,
	})
	return m
}

// Watch sets what the collector reads from now on. Until it is called,
// the metrics hold build information, the store histogram and the
// runtime's metrics only.
func (m *Metrics) Watch(s Sources) { m.src.Store(&s) }

// ObserveStoreSync records one fsync of the store's journal that took d:
// the store's Options.OnSync.
func (m *Metrics) ObserveStoreSync(d time.Duration) { m.storeSync.Observe(d.Seconds()) }

// Gatherer returns the registry, for tests and other exporters.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// slogPrinter is promhttp's error log on a slog.Logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("serving metrics", "err", fmt.Sprint(v...))
}
