package plugin_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
)

// BenchmarkStream moves bytes one way through one stream of the reference
// transport, in process and through the plugin adapter (gRPC control, unix
// socket stream hop), to show the cost of the boundary.
func BenchmarkStream(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) { benchStream(b, reftransport.New()) })
	b.Run("plugin", func(b *testing.B) { benchStream(b, remote(b, reftransport.New())) })
}

func benchStream(b *testing.B, tr sdk.Transport) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: addr, Passcode: "p"})
	if err != nil {
		b.Fatal(err)
	}
	defer ep.Close()
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "p"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ach := make(chan net.Conn, 1)
	go func() {
		a, _ := s.Accept(ctx)
		ach <- a
	}()
	c, err := ep.Open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	a := <-ach
	if a == nil {
		b.Fatal("no agent stream")
	}
	defer c.Close()
	defer a.Close()
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, a)
		done <- n
	}()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(sdk.CloseWriter).CloseWrite()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("read %d bytes, want %d", n, b.N*len(buf))
	}
}
