package main

import (
	"log/slog"

	"github.com/iofog/iofog-connector/sdk"
)

// builtinTransports returns fresh instances of the transports compiled into
// the binary. The first is the default.
func builtinTransports(log *slog.Logger) []sdk.Transport {
	_ = log
	return nil // TODO(issue 3): tcp; (issue 5): yamux, quic
}
