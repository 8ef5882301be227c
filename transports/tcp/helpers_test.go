package tcp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// watchdog fails and panics a test that runs over d, with every goroutine.
func watchdog(t testing.TB, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { panic(t.Name() + ": watchdog: ran over " + d.String()) })
	t.Cleanup(func() { timer.Stop() })
}

func listenEP(t testing.TB, tr sdk.Transport, cfg sdk.EndpointConfig) (sdk.Endpoint, string) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	ep, err := tr.Listen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep, ep.(interface{ Addr() net.Addr }).Addr().String()
}

// echoServer echoes every connection until EOF, then half-closes.
func echoServer(t testing.TB) string {
	t.Helper()
	return serve(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// serve runs h for each connection to a fresh loopback listener.
func serve(t testing.TB, h func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); h(c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes size pseudo-random bytes (seeded) to c, half-closes,
// reads the echo to EOF and checks its SHA-256.
func roundTrip(c net.Conn, seed byte, size int) error { return echoCheck(c, seed, size, true) }

// echoCheck is roundTrip; without halfClose it reads exactly size bytes
// back instead of to EOF (legacy agents carry no half-close).
func echoCheck(c net.Conn, seed byte, size int, halfClose bool) error {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	want := sha256.New()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		left := size
		for left > 0 {
			n := min(left, len(buf))
			for i := range buf[:n] {
				buf[i] = byte(size-left+i) ^ seed
			}
			want.Write(buf[:n])
			if _, err := c.Write(buf[:n]); err != nil {
				errc <- err
				return
			}
			left -= n
		}
		if halfClose {
			errc <- c.(sdk.CloseWriter).CloseWrite()
			return
		}
		errc <- nil
	}()
	got := sha256.New()
	var r io.Reader = c
	if !halfClose {
		r = io.LimitReader(c, int64(size))
	}
	n, err := io.Copy(got, r)
	if werr := <-errc; werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if n != int64(size) || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// legacyAgent is an ioFog agent's networking link written from the
// contract (docs/ioFog-contract.md, "Legacy agent protocol"): it writes the passcode in one
// write, expects exactly AUTHORIZED, writes BEAT every beat in a write of
// its own, drops reads that are exactly BEAT or BEATBEAT, and dials its
// local service when the first payload arrives.
type legacyAgent struct {
	addr, passcode, local string
	beat                  time.Duration
	tls                   *tls.Config
	beatsAnswered         atomic.Int64
	// quiet pauses the beats: a BEAT the connector reads together with
	// payload in one read cannot be told from data (a limit of the legacy
	// protocol), so checksummed transfers run with beats paused.
	quiet atomic.Bool
}

// errRefused means the connector closed the link instead of AUTHORIZED.
var errRefused = errors.New("legacy agent: not authorized")

// link dials one link and serves it until it ends; ready is closed once
// it is authorized.
func (a *legacyAgent) link(ctx context.Context, ready chan<- struct{}) error {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return err
	}
	c := raw
	if a.tls != nil {
		c = tls.Client(raw, a.tls)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := c.Write([]byte(a.passcode)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 10)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "AUTHORIZED" {
		return errRefused
	}
	c.SetReadDeadline(time.Time{})
	if ready != nil {
		close(ready)
	}
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := c.Write(b)
		return err
	}
	done := make(chan struct{})
	defer close(done)
	if a.beat > 0 {
		go func() {
			t := time.NewTicker(a.beat)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if a.quiet.Load() {
						continue
					}
					if write([]byte("BEAT")) != nil {
						return
					}
				}
			}
		}()
	}
	var local net.Conn
	defer func() {
		if local != nil {
			local.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			switch s := string(buf[:n]); {
			case s == "BEAT" || s == "BEATBEAT":
				a.beatsAnswered.Add(1)
			default:
				if local == nil {
					if local, err = net.Dial("tcp", a.local); err != nil {
						return err
					}
					go func() {
						b := make([]byte, 32<<10)
						for {
							n, err := local.Read(b)
							if n > 0 && write(b[:n]) != nil {
								return
							}
							if err != nil {
								c.Close()
								return
							}
						}
					}()
				}
				if _, werr := local.Write(buf[:n]); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			if local != nil {
				local.(*net.TCPConn).CloseWrite()
			}
			return err
		}
	}
}

// run keeps n links open until ctx is done.
func (a *legacyAgent) run(ctx context.Context, n int) (ready <-chan struct{}, wait func()) {
	var wg sync.WaitGroup
	readies := make([]chan struct{}, n)
	for i := range n {
		readies[i] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := readies[i]
			for ctx.Err() == nil {
				a.link(ctx, r)
				r = nil
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	all := make(chan struct{})
	go func() {
		for _, r := range readies {
			select {
			case <-r:
			case <-ctx.Done():
				return
			}
		}
		close(all)
	}()
	return all, wg.Wait
}
