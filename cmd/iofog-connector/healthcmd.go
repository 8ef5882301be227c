package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iofog/iofog-connector/api"
)

// newHealthCmd is the probe container images run as their HEALTHCHECK (a
// scratch image has no curl): it GETs /healthz (or /readyz) of the daemon
// the settings describe and exits 0 only on a 200.
func newHealthCmd() *cobra.Command {
	var (
		base    string
		ready   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe the running daemon's /healthz (--ready: /readyz) over its API; exit 0 when it answers 200",
		Long: `Probe the running daemon over its API, for container health checks and
scripts. The URL comes from the settings: api-address, on loopback when it
names no host or a wildcard, https unless dev is true. Over https the daemon
must present exactly the certificate in tls-cert. The probe routes need no
API token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd.Flags())
			if err != nil {
				return err
			}
			if base == "" {
				base = healthBase(s)
			}
			path := api.HealthzPath
			if ready {
				path = api.ReadyzPath
			}
			client, err := healthClient(s, timeout)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			body, err := healthGet(ctx, client, strings.TrimRight(base, "/")+path)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), body)
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	cmd.Flags().StringVar(&base, "url", "", "base URL of the API, e.g. https://127.0.0.1:443 (default: from the settings)")
	cmd.Flags().BoolVar(&ready, "ready", false, "probe "+api.ReadyzPath+" (every mapping listening) instead of "+api.HealthzPath)
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}

// healthBase is the API's base URL on the local host.
func healthBase(s *settings) string {
	host, port, _ := net.SplitHostPort(s.APIAddress)
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "https"
	if s.Dev {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// healthClient trusts exactly the configured certificate when the API is
// HTTPS: the probe runs beside the daemon and knows its identity, whatever
// names the certificate carries.
func healthClient(s *settings, timeout time.Duration) (*http.Client, error) {
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if !s.Dev {
		want, err := leafDER(s.TLSCert)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Verification is the pin below, not a chain to a root.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
					return errors.New("the API presented a certificate other than tls-cert")
				}
				return nil
			},
		}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// leafDER returns the first certificate of a PEM file.
func leafDER(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls-cert: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("tls-cert: %s holds no certificate", path)
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return nil, fmt.Errorf("tls-cert: %s: %w", path, err)
			}
			return blk.Bytes, nil
		}
	}
}

// healthGet GETs url and returns the body of a 200 answer; any other
// answer is an error carrying the daemon's reason.
func healthGet(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("health: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("health: %s: %w", url, err)
	}
	body := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"errormessage"`
		}
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			body = e.Message
		}
		return "", fmt.Errorf("health: %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}
