package streamkit_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/streamkit"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// delayProxy forwards TCP connections to target, delivering every chunk
// oneWay after it arrived, in each direction: a path with a round trip
// of twice oneWay.
func delayProxy(tb testing.TB, target string, oneWay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	pump := func(dst, src net.Conn) {
		type chunk struct {
			at time.Time
			b  []byte
		}
		q := make(chan chunk, 1024)
		go func() {
			defer close(q)
			for {
				buf := make([]byte, 32<<10)
				n, err := src.Read(buf)
				if n > 0 {
					q <- chunk{time.Now().Add(oneWay), buf[:n]}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				time.Sleep(2 * oneWay) // the TCP handshake's round trip
				u, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				go pump(u, c)
				pump(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkOpenRTT pairs streams over a path with a 4 ms round trip, with
// the default idle links and with none: the time to a usable stream.
func BenchmarkOpenRTT(b *testing.B) {
	for _, tc := range []struct {
		name string
		idle int
	}{{"idle", 0}, {"noidle", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			tr := streamkit.New(streamkit.Config{Name: "tcpkit", Listen: streamkit.ListenTCP, Dial: streamkit.DialTCP, IdleLinks: tc.idle})
			ep, addr := transporttest.Listen(b, tr, "tcp", sdk.EndpointConfig{})
			s, err := tr.Dial(context.Background(), sdk.DialConfig{Addr: delayProxy(b, addr, 2*time.Millisecond), Passcode: "pw"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			one := make([]byte, 1)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				time.Sleep(20 * time.Millisecond) // idle links refill
				b.StartTimer()
				c, a := transporttest.Pair(b, b.Context(), ep, s)
				a.Write(one)
				io.ReadFull(c, one)
				c.Close()
				a.Close()
			}
		})
	}
}
