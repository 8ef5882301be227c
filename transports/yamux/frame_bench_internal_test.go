package yamux

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// BenchmarkFrameTLS is one 64-byte yamux data frame written under TLS as
// the session's send loop writes it (header, then body, through
// frameConn) and read whole by the peer through a bufio.Reader over its
// TLS connection, as yamux's receive loop reads it; both ends run here,
// so ns/op is what a small frame costs under TLS, sender and receiver.
func BenchmarkFrameTLS(b *testing.B) {
	srvCfg, cliCfg := transporttest.TLSConfigs(b)
	cliCfg = cliCfg.Clone()
	cliCfg.ServerName = "127.0.0.1"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, _ := ln.Accept()
		accepted <- s
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		b.Fatal("accept failed")
	}
	defer s.Close()
	cork := newCork(c)
	tc := tls.Client(cork, cliCfg)
	ts := tls.Server(s, srvCfg)
	go ts.Handshake()
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	f := coalesce(tc, cork)
	body := make([]byte, 64)
	hdr := frameHdr(0, 0, 3, uint32(len(body)))
	done := make(chan error, 1)
	go func() {
		r := bufio.NewReader(ts)
		buf := make([]byte, hdrSize+len(body))
		for range b.N {
			if _, err := io.ReadFull(r, buf[:hdrSize]); err != nil {
				done <- err
				return
			}
			if _, err := io.ReadFull(r, buf[hdrSize:]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	for range b.N {
		f.Write(hdr)
		if _, err := f.Write(body); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
