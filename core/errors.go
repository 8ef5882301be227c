package core

import "errors"

var (
	// ErrInvalid is wrapped by [Manager.Add] for a request that is wrong;
	// the message names the field.
	ErrInvalid = errors.New("core: invalid mapping")

	// ErrNotFound is returned for an unknown mapping id.
	ErrNotFound = errors.New("core: no such mapping")

	// ErrDuplicate is returned by [Manager.Add] for an id already in use.
	ErrDuplicate = errors.New("core: mapping id already exists")

	// ErrUnknownTransport is wrapped by [Manager.Add] for a transport name
	// the daemon does not have.
	ErrUnknownTransport = errors.New("core: unknown transport")

	// ErrNoFreePort is wrapped by [Manager.Add] when fewer free ports are
	// left than the mapping needs.
	ErrNoFreePort = errors.New("core: not enough available ports")

	// ErrClosed is returned by calls on a closed [Manager].
	ErrClosed = errors.New("core: manager closed")
)
