package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// eventually polls cond for up to 10 s (the relay updates its counters on
// its own goroutines, a moment after the client sees the effect).
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func want(name string, c interface{ Load() int64 }, n int64) error {
	if got := c.Load(); got != n {
		return fmt.Errorf("%s = %d, want %d", name, got, n)
	}
	return nil
}

// TestRefusalReasons: each way a public client is refused counts in
// Refused and in its own counter, and Waiting follows the clients that
// wait for a link.
func TestRefusalReasons(t *testing.T) {
	watchdog(t)
	var counters Counters
	ep := newChanEndpoint()
	addr, stop := servePublic(t, ep, PublicConfig{Counters: &counters, WaitTimeout: 300 * time.Millisecond, MaxWaiting: 2, MaxWaitingPerSource: -1})
	defer stop()

	// Two clients wait: the gauge says 2; a third is over the cap.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	eventually(t, "two waiting", func() error { return want("Waiting", &counters.Waiting, 2) })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a client over the cap was not closed at once: %v", err)
	}
	c.Close()
	// The two waiting ones time out with no link.
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
	}
	eventually(t, "refusals counted", func() error {
		return errors.Join(want("RefusedTooMany", &counters.RefusedTooMany, 1),
			want("RefusedNoAgent", &counters.RefusedNoAgent, 2),
			want("RefusedTLS", &counters.RefusedTLS, 0),
			want("Refused", &counters.Refused, 3),
			want("Waiting", &counters.Waiting, 0))
	})

	// A client that gets a link stops waiting once it has it.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, "one waiting", func() error { return want("Waiting", &counters.Waiting, 1) })
	agentSide, link := tcpPair(t)
	ep.open <- link
	c.Write([]byte("x"))
	agentSide.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := agentSide.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(want("Waiting", &counters.Waiting, 0), want("Active", &counters.Active, 1), want("Refused", &counters.Refused, 3)); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedTLS: a public client whose TLS handshake fails counts in
// RefusedTLS.
func TestRefusedTLS(t *testing.T) {
	watchdog(t)
	var counters Counters
	ln := tls.NewListener(listen(t), selfSigned(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePublic(ctx, ln, newChanEndpoint(), PublicConfig{Counters: &counters}) }()
	defer func() {
		cancel()
		<-done
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // not a TLS client hello
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c)
	eventually(t, "TLS refusal counted", func() error {
		return errors.Join(want("RefusedTLS", &counters.RefusedTLS, 1), want("Refused", &counters.Refused, 1),
			want("RefusedNoAgent", &counters.RefusedNoAgent, 0), want("Waiting", &counters.Waiting, 0))
	})
}

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
