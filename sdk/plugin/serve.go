package plugin

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/profiling"
	"github.com/iofog/iofog-connector/sdk/reclaim"
)

// Serve serves impl as a transport plugin and returns when the host is
// done with it. A plugin's main is one line:
//
//	func main() { plugin.Serve(websocket.New()) }
//
// The binary must be run by a host (the connector or its agent), which
// sets the handshake environment; run by hand it prints a message saying
// so and exits.
//
// A plugin whose host dies without stopping it (SIGKILL, a crash) notices
// within a second, because it is re-parented, and exits. A plugin whose
// host stops beating (it is stopped or hung) ends the agent sessions it
// holds for it; see "Liveness across the boundary" in the package
// documentation.
func Serve(impl sdk.Transport) {
	// go-plugin points os.Stderr at its stdio stream once it serves, which
	// hosts discard; the host reads and re-logs the process's real stderr,
	// so logs go there.
	tp := &TransportPlugin{Impl: impl, stderr: os.Stderr}
	// Without its stream socket the plugin can hand no stream to the
	// host: exit, and the host starts it again.
	tp.onHubFail = func(error) { os.Exit(1) }
	if addr := os.Getenv(PprofEnv); addr != "" {
		if err := profiling.Start(context.Background(), addr, pluginLogger(tp.stderr).With("pid", os.Getpid())); err != nil {
			pluginLogger(tp.stderr).Error("profiling endpoints not served", "env", PprofEnv, "err", err)
		}
	}
	go exitWithParent(os.Getppid(), tp)
	go reclaim.WhenIdle(context.Background())
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake(),
		VersionedPlugins: map[int]goplugin.PluginSet{
			sdk.ProtocolVersion: {PluginName: tp},
		},
		GRPCServer: goplugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Output:     os.Stderr,
			Level:      hclog.Info,
			JSONFormat: true,
		}),
	})
}

// PprofEnv names the environment variable that makes a plugin process
// serve Go's profiling endpoints (net/http/pprof), for performance work:
// a loopback HOST:PORT, such as 127.0.0.1:0 (any free port; the plugin
// logs the URL, which its host re-logs under the plugin's name). Plugin
// processes inherit it from their host (the connector or its agent). Off
// when unset; any other address is refused.
const PprofEnv = "IOFOG_CONNECTOR_PLUGIN_PPROF"

// pluginLogger returns a logger for code running in the plugin process:
// JSON lines on w (the process's stderr) in hclog's format, which the host
// parses and logs under the plugin's name. A nil w means os.Stderr.
func pluginLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	return slog.New(newHCLogHandler(w, slog.LevelInfo))
}

func newHCLogHandler(w io.Writer, level slog.Level) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				return slog.String("@level", strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
}

// exitWithParent ends the plugin process once its parent (the host) is
// gone, removing its stream socket first.
func exitWithParent(ppid int, tp *TransportPlugin) {
	for {
		time.Sleep(time.Second)
		if os.Getppid() == ppid {
			continue
		}
		pluginLogger(tp.stderr).Error("the host process is gone; exiting", "host_pid", ppid)
		if srv := tp.srv.Load(); srv != nil {
			srv.hub.Close()
		}
		os.Exit(1)
	}
}
