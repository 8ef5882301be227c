package plugin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

func selfSigned(t *testing.T, ip net.IP) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{ip},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestRemoteVerifiesWithHostRoots shows that the host's RootCAs decide:
// a connector certificate they do not trust, or one for another address,
// is refused by the plugin's dial.
func TestRemoteVerifiesWithHostRoots(t *testing.T) {
	r := remote(t, reftransport.New())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serverCert, serverPool := selfSigned(t, net.IPv4(127, 0, 0, 1))
	_, otherPool := selfSigned(t, net.IPv4(127, 0, 0, 1))
	_, addr := transporttest.Listen(t, r, "tcp", sdk.EndpointConfig{Passcode: "p", TLS: &tls.Config{Certificates: []tls.Certificate{serverCert}}})
	for _, tc := range []struct {
		name   string
		tls    *tls.Config
		wantOK bool
	}{
		{"trusted", &tls.Config{RootCAs: serverPool}, true},
		{"untrusted root", &tls.Config{RootCAs: otherPool}, false},
		{"wrong server name", &tls.Config{RootCAs: serverPool, ServerName: "10.9.8.7"}, false},
	} {
		s, err := r.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "p", TLS: tc.tls})
		if s != nil {
			s.Close()
		}
		if tc.wantOK && err != nil {
			t.Errorf("%s: Dial: %v", tc.name, err)
		}
		if !tc.wantOK && (err == nil || !strings.Contains(err.Error(), "certificate")) {
			t.Errorf("%s: Dial err = %v, want a certificate verification failure", tc.name, err)
		}
	}
}
