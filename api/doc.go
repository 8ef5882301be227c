// Package api serves the ioFog Controller's REST API of the connector:
// POST /api/v2/mapping/add, /api/v2/mapping/remove, /api/v2/status and
// /api/v2/commandline, form-encoded in and JSON out, as the legacy Java
// Connector did.
package api
