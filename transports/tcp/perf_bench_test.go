package tcp_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/agent"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// BenchmarkConnRate is connector-bench's connection-rate load at the
// transport: 50 concurrent clients each dial a public listener, send a
// 32-byte echo through the connector relay (Endpoint.Open + pipe.Join),
// our agent (sdk/agent.RunPublic with its default pool) and a loopback
// echo service, read it back and close. ns/op is the time per client
// connection with 50 in flight; conns/s is the rate.
func BenchmarkConnRate(b *testing.B) {
	b.Run("dev", func(b *testing.B) { benchConnRate(b, nil, nil) })
	srv, cli := benchTLS(b)
	b.Run("tls", func(b *testing.B) { benchConnRate(b, srv, cli) })
}

// relayPath starts the public path of the benchmarks: a loopback echo
// service, our agent (sdk/agent.RunPublic, default pool) on a tcp
// endpoint (TLS on the agent links when srv is set) and a public
// listener relayed with Endpoint.Open and pipe.Join, as core does. It
// returns the public address and the endpoint.
func relayPath(b *testing.B, srv, cli *tls.Config) (string, sdk.Endpoint) {
	return relayPathWith(b, srv, cli, 0, agent.PublicConfig{})
}

// relayPathWith is relayPath with the agent's links carried through a
// proxy that delays every chunk by delay each way (a long round trip),
// and the agent's pool settings taken from pc.
func relayPathWith(b *testing.B, srv, cli *tls.Config, delay time.Duration, pc agent.PublicConfig) (string, sdk.Endpoint) {
	echo := echoServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	tr := newTransport(b)
	ep, addr := listenEP(b, tr, sdk.EndpointConfig{Passcode: "bench", TLS: srv, MaxLinks: 1 << 16})
	if delay > 0 {
		addr = delayProxy(b, addr, delay)
	}
	pc.Dial = sdk.DialConfig{Addr: addr, Passcode: "bench", TLS: cli}
	pc.Local = echo
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		agent.RunPublic(ctx, tr, pc)
	}()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); pub.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := pub.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
				st, err := ep.Open(octx)
				ocancel()
				if err != nil {
					c.Close()
					return
				}
				pipe.Join(ctx, c, st)
			}()
		}
	}()
	return pub.Addr().String(), ep
}

func benchConnRate(b *testing.B, srv, cli *tls.Config) {
	paddr, ep := relayPath(b, srv, cli)
	connRate(b, paddr, ep)
}

// BenchmarkConnRateRTT is BenchmarkConnRate in dev mode with 5 ms each
// way between agent and connector, with the agent's pool fixed at 8 links
// (the default) and growing under demand up to 64.
func BenchmarkConnRateRTT(b *testing.B) {
	b.Run("pool8", func(b *testing.B) {
		paddr, ep := relayPathWith(b, nil, nil, 5*time.Millisecond, agent.PublicConfig{Pool: 8, MaxPool: 8})
		connRate(b, paddr, ep)
	})
	b.Run("grow", func(b *testing.B) {
		paddr, ep := relayPathWith(b, nil, nil, 5*time.Millisecond, agent.PublicConfig{Pool: 8, MaxPool: 64})
		connRate(b, paddr, ep)
	})
}

// delayProxy forwards every connection to target, holding each chunk
// for d in each direction, and returns its address.
func delayProxy(b *testing.B, target string, d time.Duration) string {
	fwd := func(dst, src net.Conn) {
		type chunk struct {
			at time.Time
			p  []byte
		}
		ch := make(chan chunk, 1024)
		go func() {
			defer dst.Close()
			for c := range ch {
				time.Sleep(time.Until(c.at))
				if _, err := dst.Write(c.p); err != nil {
					return
				}
			}
		}()
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now().Add(d), buf[:n]}
			}
			if err != nil {
				close(ch)
				return
			}
		}
	}
	return serve(b, func(c net.Conn) {
		t, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		go fwd(t, c)
		fwd(c, t)
	})
}

// connRate runs the clients of the connection-rate benchmarks.
func connRate(b *testing.B, paddr string, ep sdk.Endpoint) {
	b.SetParallelism(25) // 25 × GOMAXPROCS=2 → 50 clients on the bench machine
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		msg := make([]byte, 32)
		buf := make([]byte, 32)
		for pb.Next() {
			c, err := net.DialTimeout("tcp", paddr, 10*time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
			} else if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
	if r, ok := ep.(sdk.StatsReporter); ok {
		b.ReportMetric(float64(r.Stats().Failed), "refused")
	}
}

// BenchmarkLatency is connector-bench's latency load at the transport: a
// 64-byte round trip per op on one connection through the same path as
// BenchmarkConnRate.
func BenchmarkLatency(b *testing.B) {
	b.Run("dev", func(b *testing.B) { benchLatency(b, nil, nil) })
	srv, cli := benchTLS(b)
	b.Run("tls", func(b *testing.B) { benchLatency(b, srv, cli) })
}

func benchLatency(b *testing.B, srv, cli *tls.Config) {
	paddr, _ := relayPath(b, srv, cli)
	c, err := net.DialTimeout("tcp", paddr, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	for range 100 {
		c.Write(msg)
		io.ReadFull(c, buf)
	}
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
