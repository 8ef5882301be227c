package tcp

import "log/slog"

// NewWithVersion is New speaking at most protocol version max, so that a
// test plays an agent or connector of an older release.
func NewWithVersion(cfg Config, log *slog.Logger, max byte) (*Transport, error) {
	cfg.maxVersion = max
	return New(cfg, log)
}
