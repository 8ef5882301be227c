package sdk

import (
	"errors"
	"fmt"
	"net"
)

var (
	// ErrBadPasscode is returned to an agent ([Transport.Dial],
	// [Session.Accept], [Session.Open]) whose passcode the connector refused.
	ErrBadPasscode = errors.New("sdk: passcode refused")

	// ErrLinkLimit is returned to an agent refused because the endpoint
	// already holds its MaxLinks links.
	ErrLinkLimit = errors.New("sdk: link limit reached")

	// ErrInvalidConfig is wrapped by [EndpointConfig.Validate] and
	// [DialConfig.Validate], and by transports given a config they cannot use.
	ErrInvalidConfig = errors.New("sdk: invalid config")

	// ErrTransportUnavailable is returned by a transport that cannot serve
	// right now, such as a plugin whose process died; the caller may retry.
	ErrTransportUnavailable = errors.New("sdk: transport unavailable")

	// ErrIncompatible is returned when a peer (an agent or a plugin)
	// speaks a protocol or SDK version this side does not support.
	ErrIncompatible = errors.New("sdk: incompatible version")

	// ErrClosed is returned by calls on a closed [Endpoint] or [Session].
	// It wraps net.ErrClosed, so errors.Is(err, net.ErrClosed) holds too.
	ErrClosed = fmt.Errorf("sdk: closed: %w", net.ErrClosed)
)
