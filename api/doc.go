// Package api serves the ioFog Controller's REST API of the connector:
// POST /api/v2/mapping/add, /api/v2/mapping/remove, /api/v2/status and
// /api/v2/commandline, form-encoded in and JSON out, as the legacy Java
// Connector did.
//
// Every request first passes, in order: the optional bearer token
// ([Config.Token], replaced at run time with [Server.SetToken]) and
// client-certificate check
// ([Config.RequireClientCert]) (401), a canonical path (404, instead of
// the mux's empty redirect), and Go's cross-origin protection (403), so
// that a web page cannot drive the API from a browser on the connector's
// host. A known route with another method than POST gets 405 with
// Allow: POST. Every answer, error or not, is a JSON object with a
// timestamp; errors carry "status":"error" and an "errormessage", which
// the Controller shows to its operator.
package api
