package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/iofog/iofog-connector/api/metrics"
	"github.com/iofog/iofog-connector/core/settings"
)

// metricsListener is the metrics' own listener; nil when they are off.
// Its methods are safe on nil.
type metricsListener struct {
	ln net.Listener
}

// listenMetrics binds s.MetricsAddress; nil when it is empty (metrics
// off). On dev defaults, where nobody asked for metrics, a port already
// taken (a second dev daemon) only costs the metrics, with a warning.
func listenMetrics(ctx context.Context, s *settings.Settings, log *slog.Logger) (*metricsListener, error) {
	if s.MetricsAddress == "" {
		return nil, nil
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", s.MetricsAddress)
	if err != nil {
		if s.DevDefaults && s.MetricsAddress == settings.DevMetricsAddress {
			log.Warn("metrics are off: their dev-default address is taken", "metrics_address", s.MetricsAddress, "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("metrics-address: %w", err)
	}
	return &metricsListener{ln: ln}, nil
}

// URL says where the metrics are served, for the start-up line.
func (l *metricsListener) URL() string {
	if l == nil {
		return settings.MetricsOff
	}
	return "http://" + l.ln.Addr().String() + metrics.Path
}

// Close closes the listener (idempotent in effect: a second close only
// returns an error, ignored).
func (l *metricsListener) Close() {
	if l != nil {
		l.ln.Close()
	}
}

// serve watches src and answers scrapes until ctx is done; it returns at
// once when the metrics are off. Beyond loopback it warns that anyone
// who reaches the port reads the metrics.
func (l *metricsListener) serve(ctx context.Context, m *metrics.Metrics, src metrics.Sources, log *slog.Logger) error {
	if l == nil {
		return nil
	}
	m.Watch(src)
	if metricsExposed(l.ln.Addr()) {
		log.Warn("the metrics listen beyond loopback over plain HTTP without authentication: anyone who reaches them reads mapping ids, ports and traffic counts (no passcodes); restrict the port with a firewall or a network policy",
			"metrics", l.URL())
	}
	return m.Serve(ctx, l.ln)
}

// metricsExposed reports whether a metrics listener on addr is reachable
// beyond this host (anything but a loopback TCP address).
func metricsExposed(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}
