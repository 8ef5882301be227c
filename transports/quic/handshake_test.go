package quic_test

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
	"slices"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/quic"
)

// TestOldAgentIsAnsweredInVersion1: an agent speaking hello version 1 on
// the first stream reads exactly the one-byte answer it expects (then the
// stream ends), not the version 2 terms.
func TestOldAgentIsAnsweredInVersion1(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := newTransport(t, quic.Config{IdentityDir: t.TempDir()})
	ep, err := tr.Listen(ctx, sdk.EndpointConfig{Addr: "127.0.0.1:0", Passcode: "pw", HeartbeatThreshold: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	for _, tc := range []struct {
		version byte
		want    []byte
	}{
		{1, []byte{0}},
		{2, []byte{0, 0, 0, 0x0b, 0xb8}}, // OK, then 3000 ms
	} {
		c, err := quicgo.DialAddr(ctx, transporttest.Addr(t, ep), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{quic.ALPN}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hello := append([]byte("IOFY"), tc.version, 0, 2)
		st.Write(append(hello, "pw"...))
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("hello version %d: answer % x, %v; want % x then the end of the stream", tc.version, got, err, tc.want)
		}
		c.CloseWithError(0, "")
	}
}

// TestNewAgentFallsBackToVersion1: against a connector that knows only
// hello version 1 (it refuses every other version and closes the
// connection), Dial dials again in each older version and the session
// works.
func TestNewAgentFallsBackToVersion1(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := quicgo.ListenAddr("127.0.0.1:0", selfSigned(t), &quicgo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var hellos []byte
	record := func(v byte) {
		mu.Lock()
		hellos = append(hellos, v)
		mu.Unlock()
	}
	go func() { // the connector of the previous release, in short
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				st, err := c.AcceptStream(ctx)
				if err != nil {
					return
				}
				if !transporttest.FirstReleaseHello(st, record) {
					c.CloseWithError(0x103, "incompatible version")
					return
				}
				st.Close()
				s, err := c.OpenStreamSync(ctx)
				if err != nil {
					return
				}
				s.Write([]byte{0, 'h', 'i'}) // stream header, then data
				<-c.Context().Done()
			}()
		}
	}()
	s, err := newTransport(t, quic.Config{}).Dial(ctx, sdk.DialConfig{Addr: ln.Addr().String(), Passcode: "pw"})
	if err != nil {
		t.Fatalf("Dial of a version 1 connector: %v", err)
	}
	defer s.Close()
	transporttest.CheckHelloFallback(t, ctx, s, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hellos)
	})
}

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "old connector"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{quic.ALPN},
		MinVersion:   tls.VersionTLS13,
	}
}
