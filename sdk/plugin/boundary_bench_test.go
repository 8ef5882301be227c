package plugin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkBoundary compares the two ways a stream's bytes could cross
// between host and plugin processes, on the same unix socket kind go-plugin
// uses: a unix connection per stream (what this package does), and one
// bidirectional gRPC stream per stream, carrying 64 KiB messages (what a
// net.Conn adapter over go-plugin's broker would do). One way, 64 KiB
// writes.
func BenchmarkBoundary(b *testing.B) {
	b.Run("unix-conn", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "s")
		ln, err := net.Listen("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		got := make(chan int64, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- -1
				return
			}
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			got <- n
		}()
		c, err := net.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
		if n := <-got; n != int64(b.N*len(buf)) {
			b.Fatalf("got %d bytes", n)
		}
	})
	b.Run("grpc-stream", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "s")
		ln, err := net.Listen("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		got := make(chan int64, 1)
		desc := grpc.StreamDesc{StreamName: "Push", ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			var n int64
			for {
				var m []byte
				if err := ss.RecvMsg(&m); errors.Is(err, io.EOF) {
					got <- n
					return ss.SendMsg(&[]byte{})
				} else if err != nil {
					got <- -1
					return err
				}
				n += int64(len(m))
			}
		}}
		srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
		srv.RegisterService(&grpc.ServiceDesc{ServiceName: "bench.Pipe", HandlerType: (*any)(nil), Streams: []grpc.StreamDesc{desc}}, struct{}{})
		go srv.Serve(ln)
		defer srv.Stop()
		conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		st, err := conn.NewStream(context.Background(), &desc, "/bench.Pipe/Push", grpc.ForceCodec(rawCodec{}))
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		for range b.N {
			if err := st.SendMsg(&buf); err != nil {
				b.Fatal(err)
			}
		}
		st.CloseSend()
		var ack []byte
		if err := st.RecvMsg(&ack); err != nil {
			b.Fatal(err)
		}
		if n := <-got; n != int64(b.N*len(buf)) {
			b.Fatalf("got %d bytes", n)
		}
	})
}

// rawCodec sends []byte messages as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }
