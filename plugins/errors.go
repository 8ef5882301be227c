package plugins

import "errors"

var (
	// ErrNotFound is returned by [Start] when the plugin executable does
	// not exist or is not executable.
	ErrNotFound = errors.New("plugins: plugin executable not found")

	// ErrDuplicate is returned by [Load] when two plugins in one directory
	// report the same transport name.
	ErrDuplicate = errors.New("plugins: two plugins report the same transport name")
)
