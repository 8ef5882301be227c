// Package control is the daemon's local control channel: an HTTP server
// on a unix socket of mode 0600 in the data dir ([SocketName]), and the
// client the CLI (`iofog-connector status|stop|reload|mapping ...`) calls.
// Only the daemon's user (or root) can reach the socket, so it needs no
// token; it is bounded all the same (64 KiB bodies, header and I/O
// timeouts), so that a stuck or buggy client cannot hold the daemon.
//
// Routes (JSON answers; errors are {"error":"..."}):
//
//	GET    /status          status.Daemon
//	POST   /stop            "stopping" (text); the daemon then stops
//	POST   /reload          ReloadResult, or 422 when the settings do not load
//	GET    /mappings        {"mappings":[status.Mapping without passcodes]}
//	GET    /mapping?id=ID   status.Mapping with passcodes
//	POST   /mapping         core.AddRequest as JSON -> status.Mapping with passcodes
//	DELETE /mapping?id=ID   {"id":ID,"removed":true}
//
// Mapping errors map to 400 (invalid request), 404 (unknown id), 409
// (duplicate id), 413 (body too large), 503 (shutting down), 507 (no free
// ports) or 500. The mapping routes call the same core methods as the REST
// API, so a mapping added or removed here is stored (and journalled)
// exactly as one the Controller adds or removes.
package control
