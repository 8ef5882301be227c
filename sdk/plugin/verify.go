package plugin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// verifier runs in the host and verifies, for the plugin, the certificate
// chains connectors present, against the DialConfig.TLS of each dial: a
// cert pool cannot be sent to the plugin, so the check comes back here.
type verifier struct {
	pb.UnimplementedVerifierServer

	broker *goplugin.GRPCBroker
	once   sync.Once
	id     uint32

	mu      sync.Mutex
	configs map[uint64]verifyConfig
}

type verifyConfig struct {
	tls        *tls.Config
	serverName string
}

// start serves the verifier on the broker once and returns its id.
func (v *verifier) start() uint32 {
	v.once.Do(func() {
		v.id = v.broker.NextId()
		go v.broker.AcceptAndServe(v.id, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(opts...)
			pb.RegisterVerifierServer(s, v)
			return s
		})
	})
	return v.id
}

// add registers cfg for a dial and returns its token.
func (v *verifier) add(cfg *tls.Config, serverName string) uint64 {
	var b [8]byte
	rand.Read(b[:])
	token := binary.BigEndian.Uint64(b[:]) | 1
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.configs == nil {
		v.configs = map[uint64]verifyConfig{}
	}
	v.configs[token] = verifyConfig{tls: cfg, serverName: serverName}
	return token
}

func (v *verifier) remove(token uint64) {
	v.mu.Lock()
	delete(v.configs, token)
	v.mu.Unlock()
}

// Verify checks a chain as crypto/tls would for the dial's config.
func (v *verifier) Verify(_ context.Context, r *pb.VerifyRequest) (*pb.ErrorResponse, error) {
	v.mu.Lock()
	vc, ok := v.configs[r.Token]
	v.mu.Unlock()
	if !ok {
		return &pb.ErrorResponse{Error: toPB(fmt.Errorf("plugin: verify: unknown dial: %w", sdk.ErrClosed))}, nil
	}
	if len(r.CertificateDer) == 0 {
		return &pb.ErrorResponse{Error: &pb.Error{Message: "tls: the connector presented no certificate"}}, nil
	}
	certs := make([]*x509.Certificate, len(r.CertificateDer))
	for i, der := range r.CertificateDer {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return &pb.ErrorResponse{Error: &pb.Error{Message: "tls: " + err.Error()}}, nil
		}
		certs[i] = c
	}
	opts := x509.VerifyOptions{
		Roots:         vc.tls.RootCAs,
		DNSName:       vc.serverName,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   time.Now(),
	}
	if vc.tls.Time != nil {
		opts.CurrentTime = vc.tls.Time()
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return &pb.ErrorResponse{Error: &pb.Error{Message: "tls: " + err.Error()}}, nil
	}
	return &pb.ErrorResponse{}, nil
}

// remoteVerify returns the VerifyConnection of a plugin-side dial whose
// host verifies chains (plugin side).
func remoteVerify(conn *grpc.ClientConn, token uint64) func(tls.ConnectionState) error {
	c := pb.NewVerifierClient(conn)
	return func(cs tls.ConnectionState) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		req := &pb.VerifyRequest{Token: token, ServerName: cs.ServerName}
		for _, cert := range cs.PeerCertificates {
			req.CertificateDer = append(req.CertificateDer, cert.Raw)
		}
		resp, err := c.Verify(ctx, req)
		if err != nil {
			return fmt.Errorf("plugin: verifying the connector's certificate with the host: %w", err)
		}
		if e := resp.Error; e != nil {
			return fmt.Errorf("%s", e.Message)
		}
		return nil
	}
}
