package store

import "errors"

var (
	// ErrCorrupt is wrapped by [Open] when configs.json or the journal
	// cannot be parsed; the files are left as they are.
	ErrCorrupt = errors.New("store: corrupt")

	// ErrClosed is returned by [Store.Add] and [Store.Remove] after
	// [Store.Close].
	ErrClosed = errors.New("store: closed")

	// ErrLocked is returned by [Open] when another process holds the data
	// dir.
	ErrLocked = errors.New("store: data dir in use by another process")
)
