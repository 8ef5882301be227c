package ports

import "errors"

var (
	// ErrNoFreePort is returned by [Allocator.Next] when every port of the
	// pool is taken.
	ErrNoFreePort = errors.New("ports: no free port in range")

	// ErrNotInPool is returned by [Allocator.Reserve] for a port outside
	// the pool (not configured, or excluded).
	ErrNotInPool = errors.New("ports: port not in pool")

	// ErrInUse is returned by [Allocator.Reserve] for a port already taken.
	ErrInUse = errors.New("ports: port already in use")

	// ErrBadSpec is wrapped by [ParseSpec] for text that is neither a port
	// nor a range.
	ErrBadSpec = errors.New("is not a port or a range")
)
