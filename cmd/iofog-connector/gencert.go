package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// newGenCertCmd writes a self-signed TLS identity for `dev: false`. The
// Debian package runs it on first install so that the service starts; the
// Controller hands the certificate to agents, which trust exactly it.
func newGenCertCmd() *cobra.Command {
	var (
		certPath, keyPath string
		hosts             []string
		days              int
	)
	cmd := &cobra.Command{
		Use:   "gencert --cert FILE --key FILE [--host NAME|IP]...",
		Short: "Write a new self-signed TLS identity (RSA 3072) for dev: false; never overwrites a file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(hosts) == 0 {
				hosts = defaultCertHosts()
			}
			if days < 1 {
				return fmt.Errorf("days: %d is not a positive number", days)
			}
			if err := genCert(certPath, keyPath, hosts, time.Duration(days)*24*time.Hour); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s for %v, valid %d days\n", certPath, keyPath, hosts, days)
			return nil
		},
	}
	cmd.Flags().StringVar(&certPath, "cert", "server-cert.pem", "certificate file to create (PEM)")
	cmd.Flags().StringVar(&keyPath, "key", "server-key.pem", "private key file to create (PEM, mode 0600)")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS name or IP address the certificate is for, repeatable (default: this host's name, localhost, 127.0.0.1, ::1)")
	cmd.Flags().IntVar(&days, "days", 3650, "validity in days (agents pin this certificate: replacing it means giving the Controller the new one)")
	return cmd
}

func defaultCertHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append([]string{h}, hosts...)
	}
	return hosts
}

// genCert creates keyPath (0600) and certPath (0644), failing if either
// exists; on failure it removes what it created.
func genCert(certPath, keyPath string, hosts []string, validity time.Duration) error {
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("gencert: %s exists; it is never overwritten", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("gencert: %w", err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return fmt.Errorf("gencert: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("gencert: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"iofog-connector"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// Self-signed and pinned by agents: it is its own trust anchor.
		IsCA: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("gencert: certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("gencert: key: %w", err)
	}
	if err := writeExcl(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	if err := writeExcl(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

// writeExcl creates path with mode, failing if it exists, and fsyncs it.
func writeExcl(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("gencert: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("gencert: %s: %w", path, err)
	}
	return nil
}
