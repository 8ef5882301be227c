package plugin

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// errorKind is a sentinel error and the name it travels under.
type errorKind struct {
	kind string
	err  error
}

// kinds lists the sentinel errors that cross the process boundary.
func kinds() []errorKind {
	return []errorKind{
		{"bad_passcode", sdk.ErrBadPasscode},
		{"link_limit", sdk.ErrLinkLimit},
		{"invalid_config", sdk.ErrInvalidConfig},
		{"unavailable", sdk.ErrTransportUnavailable},
		{"incompatible", sdk.ErrIncompatible},
		{"closed", sdk.ErrClosed},
		{"canceled", context.Canceled},
		{"deadline", context.DeadlineExceeded},
		{"addr_in_use", syscall.EADDRINUSE},
	}
}

// toPB encodes err for the wire, or returns nil.
func toPB(err error) *pb.Error {
	if err == nil {
		return nil
	}
	e := &pb.Error{Message: err.Error()}
	for _, k := range kinds() {
		if errors.Is(err, k.err) {
			e.Kind = k.kind
			break
		}
	}
	return e
}

// remoteError is an error that came from the plugin process. It wraps the
// sentinel its kind names, so errors.Is works across the boundary.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return "plugin: " + e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// fromPB decodes a wire error, or returns nil.
func fromPB(e *pb.Error) error {
	if e == nil {
		return nil
	}
	for _, k := range kinds() {
		if k.kind == e.Kind {
			return &remoteError{msg: e.Message, sentinel: k.err}
		}
	}
	return &remoteError{msg: e.Message}
}

// callError turns a failed gRPC call into our errors: ctx's own error when
// ctx ended, else [sdk.ErrTransportUnavailable] (the plugin process died or
// hung up).
func callError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch status.Code(err) {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	return fmt.Errorf("plugin: %s: %w: %v", op, sdk.ErrTransportUnavailable, err)
}
