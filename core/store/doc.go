// Package store keeps the connector's mappings durably in its data dir, as
// configs.json in the legacy format plus an append-only journal beside it.
//
// An acknowledged [Store.Add] or [Store.Remove] has been fsync'd to the
// journal, so it survives kill -9 or power loss at any instant. Concurrent
// changes share one fsync (group commit). Each journal record carries a
// CRC-32C of its bytes. On [Open] the journal is replayed onto configs.json
// and both are compacted into a new configs.json (temp file, fsync, rename,
// fsync of the directory).
//
// The store refuses rather than guesses. configs.json must be one JSON
// object whose only key is "mappings", an array of mappings with the
// legacy keys (plus the optional ones of [Mapping]) and nothing else, no
// id and no port used twice. In the journal, only an unterminated final
// record, which can never have been acknowledged, is dropped; a record
// failing its checksum, or any other damage, stops [Open] with an error
// wrapping [ErrCorrupt] that names the file (and the record), and the
// files are left byte for byte: nothing is ever rewritten because it could
// not be read. Journals of versions before checksums are replayed once and
// compacted at once.
package store
