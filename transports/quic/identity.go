package quic

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Files of the persisted dev identity in Config.IdentityDir.
const (
	CertFile = "quic-identity.crt"
	KeyFile  = "quic-identity.key"
)

// identity is the connector's dev-mode TLS identity.
type identity struct {
	cert     tls.Certificate
	certPEM  []byte
	certPath string // empty when in memory only
}

// fingerprint returns the hex SHA-256 of the certificate's DER.
func (id *identity) fingerprint() string {
	sum := sha256.Sum256(id.cert.Certificate[0])
	return hex.EncodeToString(sum[:])
}

// loadIdentity reads the identity from dir, generating and saving it first
// if it is not there. An empty dir means a fresh in-memory identity.
func loadIdentity(dir string, hosts []string) (*identity, error) {
	if dir == "" {
		certPEM, keyPEM, err := generate(hosts)
		if err != nil {
			return nil, err
		}
		return parseIdentity(certPEM, keyPEM, "")
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		certPEM, keyPEM, err := generate(hosts)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("quic: identity dir: %w", err)
		}
		// The key first, so a crash between the writes leaves no
		// certificate without its key.
		if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(certPath, certPEM, 0o644); err != nil {
			return nil, err
		}
		return parseIdentity(certPEM, keyPEM, certPath)
	}
	if err != nil {
		return nil, fmt.Errorf("quic: reading the identity: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("quic: reading the identity key: %w", err)
	}
	return parseIdentity(certPEM, keyPEM, certPath)
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("quic: writing the identity: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("quic: writing the identity: %w", err)
	}
	return nil
}

func parseIdentity(certPEM, keyPEM []byte, path string) (*identity, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("quic: identity: %w", err)
	}
	return &identity{cert: cert, certPEM: certPEM, certPath: path}, nil
}

// generate makes a self-signed ECDSA P-256 certificate, valid for ten
// years, for localhost, the loopback addresses, the hostname and hosts.
func generate(hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("quic: identity key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("quic: identity serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "iofog-connector dev identity"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("quic: identity certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("quic: identity key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// CertPool returns a client TLS config that trusts the certificates in the
// PEM file at path (the agent's --ca, e.g. a connector's quic-identity.crt).
func CertPool(path string) (*tls.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("quic: reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("quic: %w: no certificate in %s", sdk.ErrInvalidConfig, path)
	}
	return &tls.Config{RootCAs: pool}, nil
}
