package tcp_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// benchTLS returns the suite's TLS identity for 127.0.0.1 (a fresh
// self-signed ECDSA P-256 certificate, what the connector generates) and a
// client config that verifies it.
func benchTLS(b testing.TB) (server, client *tls.Config) { return transporttest.TLSConfigs(b) }

// BenchmarkOpenTLS is the TLS path's connection rate at the transport:
// each iteration binds a pooled agent link (Endpoint.Open), carries a
// 32-byte echo through the agent to a loopback echo service and closes;
// the agent refills its pool with a new TLS link per stream, which is
// where a TLS deployment spends its handshakes. The client config is the
// one our agent uses (cmd/iofog-connector/agentsec.go); run with
// -cpuprofile to see where a connection's CPU goes.
func BenchmarkOpenTLS(b *testing.B) {
	srv, cli := benchTLS(b)
	// A session resumes its links' TLS sessions, with X25519 alone as
	// key exchange (linkTLS), unless the config disables tickets: "full"
	// is a full handshake per link, "resumed" what the agent does, and
	// "resumed-hybrid" resumption with X25519MLKEM768 (a caller's own
	// session cache turns the X25519-only resumption off).
	full := cli.Clone()
	full.SessionTicketsDisabled = true
	b.Run("full", func(b *testing.B) { benchOpenTLS(b, srv, full) })
	b.Run("resumed", func(b *testing.B) { benchOpenTLS(b, srv, cli) })
	hybrid := cli.Clone()
	hybrid.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	b.Run("resumed-hybrid", func(b *testing.B) { benchOpenTLS(b, srv, hybrid) })
}

func benchOpenTLS(b *testing.B, srv, cli *tls.Config) {
	echo := echoServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := newTransport(b)
	ep, addr := listenEP(b, tr, sdk.EndpointConfig{Passcode: "bench", TLS: srv.Clone(), MaxLinks: 1 << 16})
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "bench", TLS: cli})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	go func() {
		for {
			st, err := s.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				lc, err := net.Dial("tcp", echo)
				if err != nil {
					return
				}
				defer lc.Close()
				go func() {
					io.Copy(lc, st)
					lc.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(st, lc)
			}()
		}
	}()
	msg := make([]byte, 32)
	buf := make([]byte, 32)
	for b.Loop() {
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := ep.Open(octx)
		ocancel()
		if err != nil {
			b.Fatal(err)
		}
		st.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := st.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(st, buf); err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
}
