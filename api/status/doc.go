// Package status composes the daemon's status once, from the mapping
// manager's snapshots, for every place that shows it: the REST API's
// /api/v2/status and commandline status answers (package api), and the
// local control socket (package api/control) that `iofog-connector
// status` and `iofog-connector mapping ls|show|add` read.
//
// [SummaryOf] and [MappingOf] are the composition: pure functions of
// core's snapshots. [Reporter] binds them to a running daemon. [Daemon],
// [Row] and [Mapping] are also the JSON of the control socket and of the
// CLI's --json output: their field names are stable, fields are only ever
// added. The REST API renders its legacy answers (fixed by the ioFog
// Controller's contract) from [Summary] and [Mapping].
package status
