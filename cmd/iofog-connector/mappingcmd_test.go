package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
)

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{10 << 20, "10.0 MiB"}, {3 << 30, "3.0 GiB"}, {5 << 40, "5.0 TiB"}, {1 << 62, "4.0 EiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMappingTable: the columns line up whatever the widths, every
// mapping is one line, and a problem follows its state.
func TestMappingTable(t *testing.T) {
	ms := []status.Mapping{
		{ID: "a", Type: "public", Transport: "tcp", Port1: 7000, Port2: 7001, State: "ok", Links: 8,
			Connections: 2, ConnectionsTotal: 1234, BytesUp: 1536, BytesDown: 3 << 20},
		{ID: "a-much-longer-mapping-id-0123456789", Type: "private", Transport: "yamux", Port1: 17002, Port2: 17003,
			State: "waiting", Problem: "no agent linked on port2 (17003)"},
		{ID: "bad\tid\nx", Type: "public", Transport: "quic", Port1: 7004, Port2: 7005, State: "down", Problem: "port\ttaken"},
	}
	var b bytes.Buffer
	writeMappingTable(&b, ms)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 rows:\n%s", len(lines), b.String())
	}
	header := lines[0]
	cols := []string{"ID", "TYPE", "TRANSPORT", "PORTS", "LINKS", "CONNS", "UP", "DOWN", "STATE"}
	for _, c := range cols {
		if !strings.Contains(header, c) {
			t.Fatalf("header %q lacks %s", header, c)
		}
	}
	// Each column starts at the same offset on every line.
	for _, tt := range []struct{ col, cell1, cell2, cell3 string }{
		{"TYPE", "public", "private", "public"},
		{"PORTS", "7000,7001", "17002,17003", "7004,7005"},
		{"CONNS", "2/1234", "0/0", "0/0"},
		{"UP", "1.5 KiB", "0 B", "0 B"},
		{"STATE", "ok", "waiting: no agent linked on port2 (17003)", "down: port taken"},
	} {
		want := strings.Index(header, tt.col)
		for i, cell := range []string{tt.cell1, tt.cell2, tt.cell3} {
			if got := strings.Index(lines[i+1], cell); got != want {
				t.Errorf("column %s: %q at %d on line %d, want %d:\n%s", tt.col, cell, got, i+1, want, b.String())
			}
		}
	}
	if !strings.HasPrefix(lines[3], "bad id x ") {
		t.Errorf("tabs and line breaks of an id are not kept out of the table: %q", lines[3])
	}

	b.Reset()
	writeMappingTable(&b, nil)
	if !strings.Contains(b.String(), "no mappings") {
		t.Errorf("empty table: %q", b.String())
	}
}

// TestMappingAddFlags: the flags map to core.AddRequest, and wrong
// combinations are refused with a message naming the flag.
func TestMappingAddFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    core.AddRequest
		wantErr string
	}{
		{"public defaults", []string{"--public"}, core.AddRequest{Type: "public", MaxConnections1: 60}, ""},
		{"private defaults", []string{"--private"}, core.AddRequest{Type: "private", MaxConnections1: 1, MaxConnections2: 1}, ""},
		{"private all", []string{"--private", "--transport", "yamux", "--max-connections", "3", "--max-connections2", "2", "--id", "db",
			"--heartbeat", "200s", "--idle-timeout", "1h"},
			core.AddRequest{ID: "db", Type: "private", Transport: "yamux", MaxConnections1: 3, MaxConnections2: 2,
				Heartbeat1: 200 * time.Second, Heartbeat2: 200 * time.Second, IdleTimeout: time.Hour}, ""},
		{"private max2 defaults to max", []string{"--private", "--max-connections", "4"}, core.AddRequest{Type: "private", MaxConnections1: 4, MaxConnections2: 4}, ""},
		{"both", []string{"--public", "--private"}, core.AddRequest{}, "exactly one of --public and --private, not both"},
		{"neither", []string{"--max-connections", "3"}, core.AddRequest{}, "give exactly one of --public"},
		{"max2 on public", []string{"--public", "--max-connections2", "2"}, core.AddRequest{}, "--max-connections2 is for --private"},
		{"zero max", []string{"--public", "--max-connections", "0"}, core.AddRequest{}, "--max-connections 0: give at least 1"},
		{"short heartbeat", []string{"--public", "--heartbeat", "500ms"}, core.AddRequest{}, "--heartbeat 500ms: give at least 1s"},
		{"idle too long", []string{"--public", "--idle-timeout", "200h"}, core.AddRequest{}, "--idle-timeout 200h0m0s"},
		{"bad id", []string{"--public", "--id", "all"}, core.AddRequest{}, "--id: core: invalid mapping: id \"all\" is reserved"},
		{"proxy v2", []string{"--public", "--proxy-protocol", "v2"}, core.AddRequest{Type: "public", MaxConnections1: 60, ProxyProtocol: "v2"}, ""},
		{"proxy v1", []string{"--public", "--proxy-protocol", "v1"}, core.AddRequest{Type: "public", MaxConnections1: 60, ProxyProtocol: "v1"}, ""},
		{"proxy on private", []string{"--private", "--proxy-protocol", "v1"}, core.AddRequest{}, "--proxy-protocol is for --public"},
		{"proxy bad", []string{"--public", "--proxy-protocol", "v3"}, core.AddRequest{}, `--proxy-protocol "v3": give v1 or v2`},
		{"proxy empty", []string{"--public", "--proxy-protocol", ""}, core.AddRequest{}, `--proxy-protocol "": give v1 or v2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f mappingAddFlags
			cmd := &cobra.Command{Use: "add"}
			f.register(cmd)
			if err := cmd.Flags().Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := f.addRequest(cmd)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("addRequest = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestAgentCommands: the printed agent command lines carry the port, the
// passcode (quoted for the shell), the transport and the TLS choice.
func TestAgentCommands(t *testing.T) {
	pub := status.Mapping{Type: "public", Transport: "tcp", Port1: 7000, Port2: 7001, Passcode1: "abc"}
	got := agentCommands(pub, agentHints(&settings{Dev: true, Address: "c.example"}))
	want := "IOFOG_AGENT_PASSCODE=abc iofog-connector agent public --connector c.example:7000 --local 127.0.0.1:SERVICE_PORT --plaintext"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("public: %q\nwant %q", got, want)
	}
	priv := status.Mapping{Type: "private", Transport: "quic", Port1: 7002, Port2: 7003, Passcode1: "p'1", Passcode2: "p2"}
	got = agentCommands(priv, agentHints(&settings{TLSCert: "/etc/iofog-connector/server-cert.pem", BindHost: "::1"}))
	if len(got) != 2 ||
		got[0] != `IOFOG_AGENT_PASSCODE='p'\''1' iofog-connector agent private --connector [::1]:7002 --transport quic --local 127.0.0.1:SERVICE_PORT --ca /etc/iofog-connector/server-cert.pem` ||
		!strings.Contains(got[1], "--connector [::1]:7003 --transport quic --listen 127.0.0.1:LOCAL_PORT") {
		t.Fatalf("private: %q", got)
	}
	if h := agentHints(&settings{Dev: true}); h.Host != "CONNECTOR_HOST" {
		t.Fatalf("no address: host %q, want a placeholder", h.Host)
	}
}
