package pipe

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"runtime"
	"testing"
	"time"
)

// tlsConfigs returns a server config with a fresh self-signed ECDSA P-256
// certificate for 127.0.0.1 and a client config that trusts it.
func tlsConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pipe"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}, MinVersion: tls.VersionTLS13}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	return server, client
}

// tlsPair returns the two ends of one loopback TLS connection, handshaken.
func tlsPair(t testing.TB, srv, cli *tls.Config) (client, server *tls.Conn) {
	t.Helper()
	c, s := tcpPair(t)
	client, server = tls.Client(c, cli), tls.Server(s, srv)
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return client, server
}

// TestJoinTLS relays between two TLS connections (the connector's TLS
// path: public client ↔ agent link): small messages, records of every
// size up to bulk, and half-close, both ways, intact.
func TestJoinTLS(t *testing.T) {
	srv, cli := tlsConfigs(t)
	left, a := tlsPair(t, srv, cli)
	c, right := tlsPair(t, srv, cli)
	done := make(chan struct{})
	go func() { defer close(done); Join(context.Background(), a, c) }()
	go func() { io.Copy(right, right); right.CloseWrite() }()
	left.SetDeadline(time.Now().Add(30 * time.Second))
	for i, size := range []int{1, 2, 64, 16 << 10, 16<<10 + 1, 1 << 20, 7, 3 << 20, 1} {
		msg := make([]byte, size)
		rand.Read(msg)
		errc := make(chan error, 1)
		go func() { _, err := left.Write(msg); errc <- err }()
		got := make([]byte, size)
		if _, err := io.ReadFull(left, got); err != nil {
			t.Fatalf("message %d (%d bytes): %v", i, size, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("message %d (%d bytes) differs", i, size)
		}
	}
	left.CloseWrite()
	if n, err := io.Copy(io.Discard, left); n != 0 || err != nil {
		t.Fatalf("after half-close: %d bytes, %v", n, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Join did not return after both half-closes")
	}
}

// TestIdleTLSRelaysHoldNoBuffers: an idle relay between TLS connections
// keeps no copy buffer. 40 relays each carry one 32-byte echo and idle;
// the live heap they add stays under 24 KiB per relay (io.CopyBuffer's
// loop pins a 32 KiB buffer per direction: 64 KiB).
func TestIdleTLSRelaysHoldNoBuffers(t *testing.T) {
	srv, cli := tlsConfigs(t)
	const relays = 40
	type relay struct{ left, a, c, right *tls.Conn }
	var rs []relay
	for range relays {
		left, a := tlsPair(t, srv, cli)
		c, right := tlsPair(t, srv, cli)
		rs = append(rs, relay{left, a, c, right})
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // and the sync.Pool victims
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	msg := bytes.Repeat([]byte{'e'}, 32)
	for i, r := range rs {
		go Join(context.Background(), r.a, r.c)
		t.Cleanup(func() { r.left.Close(); r.right.Close() })
		r.left.SetDeadline(time.Now().Add(10 * time.Second))
		r.right.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.left.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(r.right, got); err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
		if _, err := r.right.Write(got); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r.left, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("relay %d: echo %q, %v", i, got, err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the relays' goroutines park in their reads
	after := heap()
	per := (int64(after) - int64(before)) / relays
	t.Logf("live heap per idle TLS relay: %d bytes", per)
	if per > 24<<10 {
		t.Fatalf("live heap per idle TLS relay %d bytes, want under %d", per, 24<<10)
	}
}

// BenchmarkJoinTLS is one-way throughput across a relay between two TLS
// connections (the connector's TLS path), 256 KiB writes.
func BenchmarkJoinTLS(b *testing.B) {
	srv, cli := tlsConfigs(b)
	left, a := tlsPair(b, srv, cli)
	c, right := tlsPair(b, srv, cli)
	go Join(context.Background(), a, c)
	buf := make([]byte, 256<<10)
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, right)
		done <- n
	}()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := left.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	left.CloseWrite()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("relayed %d bytes, want %d", n, b.N*len(buf))
	}
}
