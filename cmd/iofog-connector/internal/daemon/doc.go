// Package daemon is the connector daemon (`iofog-connector start`) as a
// type: [New] loads the store, the transports and the mappings and binds
// every listener (the REST API, the control socket, the metrics), failing
// early with an error that names the setting at fault; [Daemon.Run] serves
// until its ctx is done or a stop is asked for (the API's commandline
// stop, the control socket's stop, [Daemon.Stop]) and reloads the
// settings on SIGHUP; [Daemon.Close] releases what New acquired.
//
// It lives under cmd/iofog-connector/internal because it is the
// composition root of this one binary, below package main's flags,
// logger, signals and transport registry (handed over in [Config]):
//   - not in core: core may import only sdk (sdk/imports_test.go), and the
//     daemon wires api's servers;
//   - not in api: each api package is one server (REST, control socket,
//     metrics) or the status they share, usable and tested alone; the
//     daemon is their assembly plus this binary's start-up policy
//     (systemd notification, the open files limit, adopting a legacy
//     store), which is no part of the API;
//   - internal: it is no contract, so no other module may import it.
package daemon
