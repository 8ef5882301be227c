package store

import "errors"

var (
	// ErrCorrupt is wrapped by [Open] when configs.json or the journal
	// is damaged or not in the expected form; the message names the file
	// (and the journal record), and the files are left as they are.
	ErrCorrupt = errors.New("store: corrupt, left untouched")

	// ErrNoSpace is wrapped by [Store.Add], [Store.Remove] and [Open] when
	// the data dir's disk (or the process's file size limit) is full. The
	// change was not stored; nothing stored before is lost.
	ErrNoSpace = errors.New("store: no space left in the data dir")

	// ErrClosed is returned by [Store.Add] and [Store.Remove] after
	// [Store.Close].
	ErrClosed = errors.New("store: closed")

	// ErrLocked is returned by [Open] when another process holds the data
	// dir.
	ErrLocked = errors.New("store: data dir in use by another process")
)
