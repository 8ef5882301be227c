package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// sdNotify sends state (e.g. "READY=1") to the service manager with
// systemd's notify protocol: one datagram on the unix socket named by
// $NOTIFY_SOCKET (a leading '@' names an abstract socket, which the net
// package maps itself). Without $NOTIFY_SOCKET it does nothing: the daemon
// was not started by systemd with Type=notify.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] != '/' && path[0] != '@' {
		return fmt.Errorf("NOTIFY_SOCKET %q: not a unix socket path", path)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", path, err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", path, err)
	}
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", path, err)
	}
	return nil
}

// sdReady tells systemd the daemon is ready: the store is loaded, the
// stored mappings are reopened and the API and control sockets listen.
func sdReady(log *slog.Logger, mappings int) {
	if err := sdNotify(fmt.Sprintf("READY=1\nSTATUS=serving %d mappings\nMAINPID=%d", mappings, os.Getpid())); err != nil {
		log.Warn("systemd readiness notification failed", "err", err)
	}
}

// sdStopping tells systemd the daemon is shutting down.
func sdStopping(log *slog.Logger) {
	if err := sdNotify("STOPPING=1"); err != nil {
		log.Warn("systemd stop notification failed", "err", err)
	}
}
