package status

import (
	"fmt"
	"io"
	"strings"
)

// WriteText renders d for an operator: `iofog-connector status` and the
// REST API's commandline status print it.
func (d Daemon) WriteText(w io.Writer) {
	fmt.Fprintf(w, "iofog-connector %s (pid %d), up %s\n", d.Version, d.PID, d.Uptime)
	fmt.Fprintf(w, "API:                %s (dev mode: %v)\n", d.API, d.Dev)
	fmt.Fprintf(w, "Data dir:           %s\n", d.DataDir)
	fmt.Fprintf(w, "Transports:         %s (default %s)\n", strings.Join(d.Transports, ", "), d.Transport)
	fmt.Fprintf(w, "Free ports:         %d\n", d.FreePorts)
	fmt.Fprintf(w, "Agent links:        %d\n", d.AgentLinks)
	fmt.Fprintf(w, "Public connections: %d\n", d.PublicConnections)
	fmt.Fprintf(w, "Mappings:           %d\n", len(d.Mappings))
	if len(d.Mappings) == 0 {
		return
	}
	fmt.Fprintf(w, "  %-36s  %-7s  %-9s  %-16s  %-17s  %5s  %5s  %7s\n", "ID", "TYPE", "TRANSPORT", "PORTS", "STATE", "LINKS", "CONNS", "TOTAL")
	for _, m := range d.Mappings {
		state := m.State1 + "/" + m.State2
		switch {
		case m.Down != "":
			state = "DOWN"
		case m.Error != "":
			state = "ERROR"
		}
		fmt.Fprintf(w, "  %-36s  %-7s  %-9s  %-16s  %-17s  %5d  %5d  %7d\n", m.ID, m.Type, m.Transport,
			fmt.Sprintf("%d,%d", m.Port1, m.Port2), state, m.Links, m.Connections, m.Total)
		if m.Down != "" {
			fmt.Fprintf(w, "      down: %s\n", m.Down)
		} else if m.Error != "" {
			fmt.Fprintf(w, "      error: %s\n", m.Error)
		}
		if m.Refused > 0 || m.Failed > 0 {
			fmt.Fprintf(w, "      refused public clients: %d, failed agent handshakes: %d\n", m.Refused, m.Failed)
		}
	}
}

// Text returns d as [Daemon.WriteText] renders it.
func (d Daemon) Text() string {
	var b strings.Builder
	d.WriteText(&b)
	return b.String()
}
