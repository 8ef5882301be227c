// Package plugins is the host side of transport plugins: it finds plugin
// executables in a directory, starts each with hashicorp/go-plugin, and
// hands back values that satisfy [sdk.Transport], so the core cannot tell a
// plugin from a built-in transport.
//
// # Discovery
//
// A plugin is an executable regular file in the plugin directory whose name
// starts with "iofog-transport-" (for example iofog-transport-websocket).
// Other files are ignored. A plugin registers under the name it reports
// (its sdk.Transport.Name), not under its file name.
//
// # Supervision
//
// Each plugin process is watched: it is pinged every 2s and counted as hung
// when a ping takes over 5s. When it exits or hangs, the event is logged at
// Error with the last lines of its stderr, the process is killed, calls in
// flight return errors wrapping sdk.ErrTransportUnavailable, streams it
// carried end, and it is restarted with exponential backoff (1s doubling to
// 30s). Once it is back, every endpoint still open is listened again on the
// new process with its original config, so the core's Endpoint values keep
// working; calls made while the plugin is down wait for it (or their ctx).
// Agent sessions are not revived: their calls fail and the agent redials.
//
// The plugin's log lines (JSON on its stderr, see sdk/plugin) are re-logged
// through the host's slog.Logger with the attribute plugin=<file name>.
package plugins
