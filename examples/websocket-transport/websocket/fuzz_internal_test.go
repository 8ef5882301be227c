package websocket

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	xws "golang.org/x/net/websocket"
)

// FuzzStreamRead: whatever a server sends after the handshake (frames of
// any kind, lengths and masks, cut anywhere), a client stream's Read
// returns data or an error, never panics, and ends when the bytes do.
func FuzzStreamRead(f *testing.F) {
	f.Add([]byte{0x82, 0x02, 'h', 'i', 0x81, 0x03, 'F', 'I', 'N'})                  // data, then FIN
	f.Add([]byte{0x89, 0x01, 'p', 0x82, 0x01, 'x'})                                 // a ping, then data
	f.Add([]byte{0x88, 0x00})                                                       // close
	f.Add([]byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})       // a huge length
	f.Add([]byte{0x82, 0x85, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'})                  // masked by a server
	f.Add([]byte{0x02, 0x01, 'a', 0x80, 0x01, 'b', 0x81, 0x04, 'n', 'o', 'p', 'e'}) // continuation, unknown text
	f.Fuzz(func(t *testing.T, in []byte) {
		c, srv := net.Pipe()
		defer c.Close()
		defer srv.Close()
		deadline := time.Now().Add(10 * time.Second)
		c.SetDeadline(deadline)
		srv.SetDeadline(deadline)
		go func() {
			br := bufio.NewReader(srv)
			req, err := http.ReadRequest(br)
			if err != nil {
				srv.Close()
				return
			}
			h := sha1.Sum([]byte(req.Header.Get("Sec-Websocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			io.WriteString(srv, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
				base64.StdEncoding.EncodeToString(h[:])+"\r\n\r\n")
			go io.Copy(io.Discard, br) // pongs
			srv.Write(in)
			srv.Close()
		}()
		cfg, err := xws.NewConfig("ws://fuzz/", "http://fuzz/")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := xws.NewClient(cfg, c)
		if err != nil {
			return
		}
		s := newStream(ws, c, 1<<16)
		buf := make([]byte, 1024)
		for range 1 << 16 {
			if _, err := s.Read(buf); err != nil {
				if time.Now().After(deadline) {
					t.Fatalf("Read did not end before the deadline: %v", err)
				}
				return
			}
		}
		t.Fatal("Read returned data more times than the input has bytes")
	})
}
