package tcp_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// sink counts what each connection sends until EOF, then writes back one
// byte so the sender knows every byte arrived.
func sink(b *testing.B) string {
	return serve(b, func(c net.Conn) {
		io.Copy(io.Discard, c)
		c.Write([]byte{1})
	})
}

// send writes total bytes to c in 256 KiB writes, half-closes and waits
// for the sink's ack.
func send(b *testing.B, c net.Conn, total int64) {
	buf := make([]byte, 256<<10)
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	for left := total; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := c.Write(buf[:n]); err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	c.(sdk.CloseWriter).CloseWrite()
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		b.Fatal(err)
	}
}

const benchStream = 64 << 20

// BenchmarkDirectLoopback is the anchor: one TCP stream straight to the
// sink on loopback.
func BenchmarkDirectLoopback(b *testing.B) {
	addr := sink(b)
	b.SetBytes(benchStream)
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		send(b, c, benchStream)
		c.Close()
	}
}

// BenchmarkThroughTransport carries one stream the way the connector and
// our agent do: client → public listener → pipe.Join with Endpoint.Open's
// stream (connector relay) → agent link → Session.Accept's stream →
// pipe.Join with the local service (agent relay) → sink. Both relays are
// between bare *net.TCPConn, so both splice.
func BenchmarkThroughTransport(b *testing.B) {
	benchThrough(b, false)
}

func benchThrough(b *testing.B, tlsOn bool) {
	addr := sink(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := newTransport(b)
	ep, agentAddr := listenEP(b, tr, sdk.EndpointConfig{Passcode: "bench"})
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: agentAddr, Passcode: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Agent: one worker, relays each bound stream to the sink.
	go func() {
		for {
			st, err := s.Accept(ctx)
			if err != nil {
				return
			}
			lc, err := net.Dial("tcp", addr)
			if err != nil {
				st.Close()
				return
			}
			go pipe.Join(ctx, st, lc)
		}
	}()
	// Connector: the public listener relays each client over Open.
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	go func() {
		for {
			c, err := pub.Accept()
			if err != nil {
				return
			}
			st, err := ep.Open(ctx)
			if err != nil {
				c.Close()
				return
			}
			if _, ok := st.(*net.TCPConn); !ok {
				b.Errorf("Endpoint.Open returned %T, not a bare *net.TCPConn: the relay cannot splice", st)
			}
			go pipe.Join(ctx, c, st)
		}
	}()
	b.SetBytes(benchStream)
	for b.Loop() {
		c, err := net.Dial("tcp", pub.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		send(b, c, benchStream)
		c.Close()
	}
}
