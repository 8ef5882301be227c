package transporttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// freeAddr asks the kernel for a free loopback port on network and returns
// it as host:port. The port is free when probed; the caller retries on
// EADDRINUSE.
func freeAddr(network string) (string, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer pc.Close()
		return pc.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tlsPair is a self-signed server identity for 127.0.0.1 and a client
// config that trusts exactly it.
type tlsPair struct {
	server, client *tls.Config
}

// TLSConfigs returns a server config with a fresh self-signed ECDSA P-256
// certificate for 127.0.0.1, ::1 and localhost (what the connector
// generates), and a client config that trusts exactly it. The suite's
// Options.TLS uses the same; transports' own tests and benchmarks can too.
func TLSConfigs(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	p := newTLSPair(tb)
	return p.server, p.client
}

func newTLSPair(t testing.TB) *tlsPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tls key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "transporttest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tls cert: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tls cert: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tlsPair{
		server: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
			MinVersion:   tls.VersionTLS12,
		},
		client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}
}

// proxy forwards a loopback port to target until frozen; frozen, it keeps
// every connection open but forwards nothing in either direction, which is
// what a hung agent (or a network that silently drops packets) looks like
// from both ends.
type proxy struct {
	frozen  atomic.Bool
	stalled atomic.Bool
	done    chan struct{} // closed by Close
	closer  func()
	addr    string
}

// Addr is the proxy's listening address.
func (p *proxy) Addr() string { return p.addr }

// Freeze stops forwarding; bytes that arrive are read and dropped.
func (p *proxy) Freeze() { p.frozen.Store(true) }

// Stall stops reading in both directions, keeping every connection open,
// as a process stopped with SIGSTOP does: its kernel takes bytes until the
// socket buffers fill, then the writers block. A UDP proxy drops instead
// (as Freeze), which is what a stopped UDP peer looks like.
func (p *proxy) Stall() {
	p.stalled.Store(true)
	p.frozen.Store(true)
}

// Close stops the proxy and closes every connection it holds.
func (p *proxy) Close() error { p.closer(); return nil }

func newProxy(network, target string) (*proxy, error) {
	if network == "udp" {
		return newUDPProxy(target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{addr: ln.Addr().String(), done: make(chan struct{})}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
		wg     sync.WaitGroup
	)
	add := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	pump := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			if p.stalled.Load() {
				<-p.done
				return
			}
			n, err := src.Read(buf)
			if p.stalled.Load() {
				<-p.done
				return
			}
			if n > 0 && !p.frozen.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if !p.frozen.Load() {
					// Pass a close on; frozen, stay silent.
					if cw, ok := dst.(*net.TCPConn); ok {
						cw.CloseWrite()
					}
				}
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !add(c) {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !add(u) {
				return
			}
			wg.Add(2)
			go pump(u, c)
			go pump(c, u)
		}
	}()
	var once sync.Once
	p.closer = func() {
		once.Do(func() {
			close(p.done)
			ln.Close()
			mu.Lock()
			closed = true
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	return p, nil
}

func newUDPProxy(target string) (*proxy, error) {
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	p := &proxy{addr: pc.LocalAddr().String(), done: make(chan struct{})}
	var (
		mu       sync.Mutex
		upstream = map[string]*net.UDPConn{}
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if p.frozen.Load() {
				continue
			}
			mu.Lock()
			u, ok := upstream[from.String()]
			if !ok {
				u, err = net.DialUDP("udp", nil, ta)
				if err != nil {
					mu.Unlock()
					continue
				}
				upstream[from.String()] = u
				wg.Add(1)
				go func() {
					defer wg.Done()
					b := make([]byte, 64<<10)
					for {
						n, err := u.Read(b)
						if err != nil {
							return
						}
						if !p.frozen.Load() {
							pc.WriteToUDP(b[:n], from)
						}
					}
				}()
			}
			mu.Unlock()
			u.Write(buf[:n])
		}
	}()
	var once sync.Once
	p.closer = func() {
		once.Do(func() {
			close(p.done)
			pc.Close()
			mu.Lock()
			for _, u := range upstream {
				u.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	return p, nil
}

// blackHole listens on a loopback port, takes whatever arrives and never
// answers. Dialling it models a connector that hangs.
func blackHole(t *testing.T, network string) (addr string, closeFn func()) {
	t.Helper()
	p, err := newProxy(network, "127.0.0.1:9") // target unused once frozen
	if err != nil {
		t.Fatalf("black hole: %v", err)
	}
	p.Freeze()
	if network != "udp" {
		// A frozen TCP proxy still dials its target per connection; a
		// refused dial closes the client. Use a listener that holds
		// connections instead.
		p.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("black hole: %v", err)
		}
		var (
			mu    sync.Mutex
			conns []net.Conn
			wg    sync.WaitGroup
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				wg.Add(1)
				go func() { // drain, never answer
					defer wg.Done()
					buf := make([]byte, 4096)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
			}
		}()
		var once sync.Once
		return ln.Addr().String(), func() {
			once.Do(func() {
				ln.Close()
				mu.Lock()
				for _, c := range conns {
					c.Close()
				}
				mu.Unlock()
				wg.Wait()
			})
		}
	}
	return p.Addr(), func() { p.Close() }
}
