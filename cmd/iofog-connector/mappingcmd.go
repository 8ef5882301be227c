package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iofog/iofog-connector/api/control"
	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
)

// mappingJSONHelp documents the --json output of the mapping commands.
const mappingJSONHelp = `JSON output (--json) has stable field names; fields are only ever added:
  id, type ("public"|"private"), transport, port1 (agents), port2 (public
  clients, or the second agent port of a private mapping), passcode1 and
  passcode2 (show and add only), maxConnections1, maxConnections2,
  heartbeatThresholdMs1, heartbeatThresholdMs2, idleTimeoutMs (0: defaults
  or off), proxyProtocol ("v1"|"v2", absent when off), state ("ok"|"waiting"|"error"|"down"), problem, links,
  connections (open now), connectionsTotal, bytesUp (client or side 1
  toward the agent or side 2), bytesDown, refused, failedHandshakes, and
  side1/side2: {port, active, links, idleLinks, streams, failedHandshakes,
  error, restarts}. mapping ls --json prints {"mappings": [...]}, without
  passcodes.`

// newMappingCmd is `iofog-connector mapping add|ls|show|rm`.
func newMappingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mapping",
		Short: "Add, list, show and remove mappings of the running daemon (over its local control socket)",
		Long: `Manage the running daemon's mappings as the Controller does over the REST
API, through the daemon's local control socket (DATA_DIR/` + control.SocketName + `, mode
0600): no API token is needed, but the daemon's user (or root). Give the
same --config/--data-dir as start. Changes are stored durably exactly as
the API's are.

` + mappingJSONHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newMappingAddCmd(), newMappingLsCmd(), newMappingShowCmd(), newMappingRmCmd())
	return cmd
}

// mappingCtl loads the settings cmd's flags select and returns them with a
// client of that daemon's control socket.
func mappingCtl(cmd *cobra.Command) (*settings, *control.Client, error) {
	s, err := loadSettings(cmd.Flags())
	if err != nil {
		return nil, nil, err
	}
	start := "iofog-connector start"
	for _, name := range []string{"config", "data-dir"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			start += " --" + name + " " + shellQuote(f.Value.String())
		}
	}
	return s, control.NewClient(s.DataDir, start), nil
}

// mappingAddFlags are the flags of `mapping add`.
type mappingAddFlags struct {
	public, private bool
	transport       string
	maxConns        int
	maxConns2       int
	id              string
	heartbeat       time.Duration
	idleTimeout     time.Duration
	proxyProtocol   string
	json            bool
}

func (f *mappingAddFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.public, "public", false, "a public mapping: agents link to port1, public clients connect to port2")
	fl.BoolVar(&f.private, "private", false, "a private mapping: one agent links to port1, another to port2")
	fl.StringVar(&f.transport, "transport", "", "transport of the agent ports: tcp, yamux, quic or a plugin's name (default: the daemon's transport setting)")
	fl.IntVar(&f.maxConns, "max-connections", 0, "relayed connections at once through port1 (public clients, or streams of side 1); agent links are capped at the same number (default 60 for --public, as the Controller asks; 1 for --private)")
	fl.IntVar(&f.maxConns2, "max-connections2", 0, "streams at once through port2 of a --private mapping (default: --max-connections)")
	fl.StringVar(&f.id, "id", "", "the mapping's id: printable, no spaces, at most 128 bytes (default: a random id)")
	fl.DurationVar(&f.heartbeat, "heartbeat", 0, "heartbeat absence threshold of the agent links, e.g. 200s: a link silent this long is dropped; at least 1s, legacy agents need 20s or more (default: the transport's, 60s)")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 0, "close a relayed connection after this long without a byte either way, from 1s to 168h (default: never)")
	fl.StringVar(&f.proxyProtocol, "proxy-protocol", "", "v1 or v2: our agents write a PROXY protocol header with the public client's address to the local service, which must expect it (--public only; legacy agents send none; default: off)")
	fl.BoolVar(&f.json, "json", false, "print the new mapping as JSON (see mapping --help)")
}

// addRequest turns the flags into the request the daemon's core takes.
// Every flag of the mapping maps to core.AddRequest here, and only here.
func (f *mappingAddFlags) addRequest(cmd *cobra.Command) (core.AddRequest, error) {
	var req core.AddRequest
	switch {
	case f.public && f.private:
		return req, errors.New("mapping add: give exactly one of --public and --private, not both")
	case f.public:
		req.Type = core.TypePublic
	case f.private:
		req.Type = core.TypePrivate
	default:
		return req, errors.New("mapping add: give exactly one of --public (expose an agent's service) and --private (join two agents)")
	}
	changed := cmd.Flags().Changed
	if changed("max-connections") && f.maxConns < 1 {
		return req, fmt.Errorf("mapping add: --max-connections %d: give at least 1", f.maxConns)
	}
	if changed("max-connections2") {
		if f.public {
			return req, errors.New("mapping add: --max-connections2 is for --private mappings (port2 of a public mapping takes public clients)")
		}
		if f.maxConns2 < 1 {
			return req, fmt.Errorf("mapping add: --max-connections2 %d: give at least 1", f.maxConns2)
		}
	}
	if changed("heartbeat") && (f.heartbeat < core.MinHeartbeatThreshold || f.heartbeat%time.Millisecond != 0) {
		return req, fmt.Errorf("mapping add: --heartbeat %s: give at least %s, in whole milliseconds", f.heartbeat, core.MinHeartbeatThreshold)
	}
	if changed("idle-timeout") && (f.idleTimeout < core.MinIdleTimeout || f.idleTimeout > core.MaxIdleTimeout || f.idleTimeout%time.Millisecond != 0) {
		return req, fmt.Errorf("mapping add: --idle-timeout %s: give %s to %s, in whole milliseconds", f.idleTimeout, core.MinIdleTimeout, core.MaxIdleTimeout)
	}
	if changed("proxy-protocol") {
		if f.private {
			return req, errors.New("mapping add: --proxy-protocol is for --public mappings (a private pipe has no public client)")
		}
		if _, err := sdk.ParseProxyVersion(f.proxyProtocol); err != nil || f.proxyProtocol == "" {
			return req, fmt.Errorf("mapping add: --proxy-protocol %q: give v1 or v2", f.proxyProtocol)
		}
	}
	if changed("id") {
		if err := core.CheckID(f.id); err != nil {
			return req, fmt.Errorf("mapping add: --id: %w", err)
		}
	}
	req.ID, req.Transport, req.ProxyProtocol = f.id, f.transport, f.proxyProtocol
	req.MaxConnections1 = f.maxConns
	if req.MaxConnections1 == 0 {
		req.MaxConnections1 = 60
		if f.private {
			req.MaxConnections1 = 1
		}
	}
	req.Heartbeat1, req.IdleTimeout = f.heartbeat, f.idleTimeout
	if f.private {
		req.MaxConnections2, req.Heartbeat2 = f.maxConns2, f.heartbeat
		if req.MaxConnections2 == 0 {
			req.MaxConnections2 = req.MaxConnections1
		}
	}
	return req, nil
}

func newMappingAddCmd() *cobra.Command {
	var f mappingAddFlags
	cmd := &cobra.Command{
		Use:   "add --public|--private [--transport T] [--max-connections N] [--max-connections2 N] [--id ID] [--heartbeat D] [--idle-timeout D] [--json]",
		Short: "Add a mapping and print its ports, passcodes and the agent command line",
		Example: `  iofog-connector mapping add --public
  iofog-connector mapping add --private --transport yamux --heartbeat 200s
  iofog-connector mapping add --public --id web --max-connections 8 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.addRequest(cmd)
			if err != nil {
				return err
			}
			s, ctl, err := mappingCtl(cmd)
			if err != nil {
				return err
			}
			v, err := ctl.Add(cmd.Context(), req)
			if err != nil {
				return mappingErr("add", req.ID, err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), v)
			}
			writeAdded(cmd.OutOrStdout(), v, agentHints(s))
			return nil
		},
	}
	f.register(cmd)
	addConfigFlags(cmd.Flags())
	return cmd
}

func newMappingLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls [--json]",
		Aliases: []string{"list"},
		Short:   "List the mappings: id, type, transport, ports, links, connections, bytes, state",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, ctl, err := mappingCtl(cmd)
			if err != nil {
				return err
			}
			ms, err := ctl.Mappings(cmd.Context())
			if err != nil {
				return mappingErr("ls", "", err)
			}
			l := control.MappingList{Mappings: ms}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), l)
			}
			writeMappingTable(cmd.OutOrStdout(), l.Mappings)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"mappings": [...]} as JSON (see mapping --help)`)
	addConfigFlags(cmd.Flags())
	return cmd
}

func newMappingShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "show ID [--json]",
		Short:             "Show every detail of a mapping, passcodes included",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeMappingIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, ctl, err := mappingCtl(cmd)
			if err != nil {
				return err
			}
			v, err := ctl.Mapping(cmd.Context(), args[0])
			if err != nil {
				return mappingErr("show", args[0], err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			writeMappingDetail(cmd.OutOrStdout(), v, agentHints(s))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the mapping as JSON (see mapping --help)")
	addConfigFlags(cmd.Flags())
	return cmd
}

func newMappingRmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "rm ID",
		Aliases:           []string{"remove"},
		Short:             "Remove a mapping: its ports close, its links and relayed connections end",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeMappingIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, ctl, err := mappingCtl(cmd)
			if err != nil {
				return err
			}
			if err := ctl.Remove(cmd.Context(), args[0]); err != nil {
				return mappingErr("rm", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed mapping %s\n", args[0])
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

// mappingErr words an error of the daemon for the operator.
func mappingErr(op, id string, err error) error {
	var ae *control.AnswerError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Status {
	case http.StatusNotFound:
		return fmt.Errorf("mapping %s: no mapping has the id %q (see: iofog-connector mapping ls)", op, id)
	case http.StatusConflict:
		return fmt.Errorf("mapping %s: a mapping with the id %q exists already", op, id)
	}
	return fmt.Errorf("mapping %s: %s", op, ae.Message)
}

// completeMappingIDs completes the ids of the daemon the flags select.
func completeMappingIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	_, ctl, err := mappingCtl(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	ms, err := ctl.Mappings(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.ID+"\t"+m.Type+" "+fmt.Sprintf("%d,%d", m.Port1, m.Port2))
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// agentHint is what the example agent command lines need from the
// settings.
type agentHint struct {
	Host string // the connector's address as agents reach it
	TLS  string // --plaintext or --ca FILE
}

func agentHints(s *settings) agentHint {
	h := agentHint{Host: s.Address, TLS: "--plaintext"}
	if h.Host == "" {
		if ip := net.ParseIP(s.BindHost); ip != nil && !ip.IsUnspecified() {
			h.Host = s.BindHost
		} else if s.DevDefaults {
			h.Host = "127.0.0.1"
		} else {
			h.Host = "CONNECTOR_HOST"
		}
	}
	if !s.Dev {
		h.TLS = "--ca " + shellQuote(s.TLSCert)
	}
	return h
}

// agentCommands returns the agent command lines of v.
func agentCommands(v status.Mapping, h agentHint) []string {
	transport := ""
	if v.Transport != "" && v.Transport != "tcp" {
		transport = " --transport " + v.Transport
	}
	line := func(passcode, mode string, port int, tail string) string {
		return fmt.Sprintf("%s=%s iofog-connector agent %s --connector %s%s %s %s",
			passcodeEnv, shellQuote(passcode), mode, net.JoinHostPort(h.Host, fmt.Sprint(port)), transport, tail, h.TLS)
	}
	if v.Type == core.TypePublic {
		tail := "--local 127.0.0.1:SERVICE_PORT"
		if transport == "" && v.MaxConnections1 > 0 && v.MaxConnections1 < agent.DefaultPool {
			// One link per stream: links beyond the mapping's cap would be refused.
			tail += fmt.Sprintf(" --pool %d", v.MaxConnections1)
		}
		return []string{line(v.Passcode1, "public", v.Port1, tail)}
	}
	return []string{
		line(v.Passcode1, "private", v.Port1, "--local 127.0.0.1:SERVICE_PORT"),
		line(v.Passcode2, "private", v.Port2, "--listen 127.0.0.1:LOCAL_PORT"),
	}
}

// writeAdded prints a new mapping for the operator who must start its
// agents.
func writeAdded(w io.Writer, v status.Mapping, h agentHint) {
	fmt.Fprintf(w, "added %s mapping %s\n", v.Type, v.ID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  id:\t%s\n", v.ID)
	fmt.Fprintf(tw, "  transport:\t%s\n", v.Transport)
	if v.Type == core.TypePublic {
		fmt.Fprintf(tw, "  port1:\t%d\t(agents link here with passcode1)\n", v.Port1)
		fmt.Fprintf(tw, "  port2:\t%d\t(public clients connect here)\n", v.Port2)
		fmt.Fprintf(tw, "  passcode1:\t%s\n", v.Passcode1)
	} else {
		fmt.Fprintf(tw, "  port1:\t%d\t(agent 1 links here with passcode1)\n", v.Port1)
		fmt.Fprintf(tw, "  port2:\t%d\t(agent 2 links here with passcode2)\n", v.Port2)
		fmt.Fprintf(tw, "  passcode1:\t%s\n", v.Passcode1)
		fmt.Fprintf(tw, "  passcode2:\t%s\n", v.Passcode2)
	}
	tw.Flush()
	writeAgentHelp(w, v, h)
}

func writeAgentHelp(w io.Writer, v status.Mapping, h agentHint) {
	cmds := agentCommands(v, h)
	if v.Type == core.TypePublic {
		fmt.Fprintln(w, "run the agent beside the service to expose (SERVICE_PORT: its port):")
		fmt.Fprintf(w, "  %s\n", cmds[0])
		fmt.Fprintf(w, "public clients then connect to %s\n", net.JoinHostPort(h.Host, fmt.Sprint(v.Port2)))
		return
	}
	fmt.Fprintln(w, "run one agent beside the service (SERVICE_PORT) and one beside its clients (they connect to LOCAL_PORT):")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %s\n", c)
	}
}

// writeMappingTable renders ms as an aligned table.
func writeMappingTable(w io.Writer, ms []status.Mapping) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "no mappings (add one with: iofog-connector mapping add --public)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tTRANSPORT\tPORTS\tLINKS\tCONNS\tUP\tDOWN\tSTATE")
	for _, m := range ms {
		state := m.State
		if m.Problem != "" {
			state += ": " + m.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d,%d\t%d\t%d/%d\t%s\t%s\t%s\n", tableCell(m.ID), m.Type, m.Transport, m.Port1, m.Port2,
			m.Links, m.Connections, m.ConnectionsTotal, humanBytes(m.BytesUp), humanBytes(m.BytesDown), tableCell(state))
	}
	tw.Flush()
}

// tableCell keeps a value on one cell: no tabs or line breaks.
func tableCell(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// writeMappingDetail renders every field of v.
func writeMappingDetail(w io.Writer, v status.Mapping, h agentHint) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, a...)) }
	state := v.State
	if v.Problem != "" {
		state += ": " + v.Problem
	}
	row("id", "%s", tableCell(v.ID))
	row("type", "%s", v.Type)
	row("transport", "%s", v.Transport)
	row("state", "%s", tableCell(state))
	side := func(s status.Side) string {
		out := fmt.Sprintf("%d links (%d idle), %d streams, %d failed handshakes", s.Links, s.IdleLinks, s.Streams, s.FailedHandshakes)
		if s.Restarts > 0 {
			out += fmt.Sprintf(", listened again %d times", s.Restarts)
		}
		if s.Error != "" {
			out += ", error: " + tableCell(s.Error)
		}
		return out
	}
	if v.Type == core.TypePublic {
		row("port1", "%d (agents): %s", v.Port1, side(v.Side1))
		listening := "listening"
		if !v.Side2.Active {
			listening = "not listening"
		}
		row("port2", "%d (public clients): %s", v.Port2, listening)
		row("passcode1", "%s", v.Passcode1)
		row("max connections", "%d", v.MaxConnections1)
		row("heartbeat threshold", "%s", msText(v.HeartbeatThresholdMs1, "transport default"))
	} else {
		row("port1", "%d (agent 1): %s", v.Port1, side(v.Side1))
		row("port2", "%d (agent 2): %s", v.Port2, side(v.Side2))
		row("passcode1", "%s", v.Passcode1)
		row("passcode2", "%s", v.Passcode2)
		row("max connections", "%d (port1), %d (port2)", v.MaxConnections1, v.MaxConnections2)
		row("heartbeat threshold", "%s (port1), %s (port2)", msText(v.HeartbeatThresholdMs1, "transport default"), msText(v.HeartbeatThresholdMs2, "transport default"))
	}
	row("idle timeout", "%s", msText(v.IdleTimeoutMs, "off"))
	if v.Type == core.TypePublic {
		pp := v.ProxyProtocol
		if pp == "" {
			pp = "off"
		}
		row("proxy protocol", "%s", pp)
	}
	row("connections", "%d open, %d total, %d refused", v.Connections, v.ConnectionsTotal, v.Refused)
	row("bytes", "%s up, %s down", humanBytes(v.BytesUp), humanBytes(v.BytesDown))
	tw.Flush()
	writeAgentHelp(w, v, h)
}

// msText renders a number of milliseconds as a duration, or zero as zero.
func msText(ms int64, zero string) string {
	if ms == 0 {
		return zero
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// humanBytes renders n bytes with binary prefixes: 0 B, 999 B, 1.5 KiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for q := n / unit; q >= unit && exp < 5; q /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
