// Package store keeps the connector's mappings durably in its data dir, as
// configs.json in the legacy format plus an append-only journal beside it.
//
// An acknowledged [Store.Add] or [Store.Remove] has been fsync'd to the
// journal, so it survives kill -9 or power loss at any instant. Concurrent
// changes share one fsync (group commit). On [Open] the journal is replayed
// onto configs.json and both are compacted into a new configs.json (temp
// file, fsync, rename, fsync of the directory); a torn final journal record
// (a crash mid-write, never acknowledged) is dropped. Any other damage stops
// [Open] with an error, and the damaged files are left untouched.
package store
