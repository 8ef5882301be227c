package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/proxyproto"
)

// proxyService reads a PROXY header, if the connection starts with one
// (it peeks at the first byte: 'P' or '\r'), answers one line saying
// what it read ("v1 src dst", "v2 src dst" or "none"), then echoes.
func proxyService(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				first, err := br.Peek(1)
				if err != nil {
					return
				}
				line := "none"
				if first[0] == 'P' || first[0] == '\r' {
					h, err := proxyproto.Read(br)
					if err != nil {
						fmt.Fprintf(c, "bad header: %v\n", err)
						return
					}
					line = fmt.Sprintf("v%d %s %s", h.Version, h.Src, h.Dst)
				}
				fmt.Fprintln(c, line)
				io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestRunPublicWritesProxyHeader: for a stream whose origin the connector
// sent, the agent writes a PROXY header of the origin's version with the
// client's and the local address, exactly, before the client's bytes; a
// stream without an origin gets none. It runs over the reference
// transport (streamkit), which carries origins.
func TestRunPublicWritesProxyHeader(t *testing.T) {
	watchdog(t, time.Minute)
	tr := reftransport.New() // over tcp: transports/tcp TestAgentSideWritesProxyHeader
	addr := freeAddr(t)
	ep := listen(t, tr, addr, sdk.ModePublic)
	defer ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.RunPublic(ctx, tr, agent.PublicConfig{
			Dial: sdk.DialConfig{Addr: addr, Passcode: "pc"}, Local: proxyService(t), Pool: 2,
			Logger: slog.New(slog.NewTextHandler(&logBuf{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
	}()
	defer func() { cancel(); <-done }()
	client := netip.MustParseAddrPort("127.0.0.2:40123")
	for _, tc := range []struct {
		o    *sdk.Origin
		want string
	}{
		{&sdk.Origin{Client: client, Local: netip.MustParseAddrPort("127.0.0.1:7001"), Proxy: sdk.ProxyV1}, "v1 127.0.0.2:40123 127.0.0.1:7001"},
		{&sdk.Origin{Client: client, Local: netip.MustParseAddrPort("127.0.0.1:7001"), Proxy: sdk.ProxyV2}, "v2 127.0.0.2:40123 127.0.0.1:7001"},
		{&sdk.Origin{Client: netip.MustParseAddrPort("[::1]:5"), Local: netip.MustParseAddrPort("[::1]:6"), Proxy: sdk.ProxyV2}, "v2 [::1]:5 [::1]:6"},
		{nil, "none"},
	} {
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		if tc.o != nil {
			octx = sdk.WithOrigin(octx, *tc.o)
		}
		c, err := ep.Open(octx)
		ocancel()
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("after the header\n"))
		br := bufio.NewReader(c)
		got, _ := br.ReadString('\n')
		echoed, _ := br.ReadString('\n')
		c.Close()
		if strings.TrimSpace(got) != tc.want || echoed != "after the header\n" {
			t.Fatalf("service saw %q then echoed %q; want %q and the client's bytes", got, echoed, tc.want)
		}
	}
}
