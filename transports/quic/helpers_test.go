package quic_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

func listenAddr(t testing.TB, ep sdk.Endpoint) string {
	t.Helper()
	a, ok := ep.(interface{ Addr() net.Addr })
	if !ok {
		t.Fatalf("%T has no Addr method", ep)
	}
	return a.Addr().String()
}

// checkStreams opens n streams at once from ep, accepts them on s, echoes
// 64 KiB of random bytes on each and checks them, and checks Stats while
// all are open.
func checkStreams(t *testing.T, ctx context.Context, ep sdk.Endpoint, s sdk.Session, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, 2*n)
	// The agent echoes every stream.
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := s.Accept(ctx)
			if err != nil {
				errc <- fmt.Errorf("Session.Accept: %w", err)
				return
			}
			defer a.Close()
			if _, err := io.Copy(a, a); err != nil {
				errc <- fmt.Errorf("echo: %w", err)
				return
			}
			a.(sdk.CloseWriter).CloseWrite()
		}()
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := ep.Open(ctx)
		if err != nil {
			t.Fatalf("Endpoint.Open %d: %v", i, err)
		}
		conns[i] = c
	}
	if sr, ok := ep.(sdk.StatsReporter); ok {
		st := sr.Stats()
		if st.Links != 1 || st.Streams != n {
			t.Errorf("Stats() = %+v with %d streams on one session, want Links 1, Streams %d", st, n, n)
		}
	} else {
		t.Errorf("%T does not implement sdk.StatsReporter", ep)
	}
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			msg := make([]byte, 64<<10)
			rand.Read(msg)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(msg)
				if err == nil {
					err = c.(sdk.CloseWriter).CloseWrite()
				}
				werr <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				errc <- fmt.Errorf("stream %d: read: %w", i, err)
				return
			}
			if err := <-werr; err != nil {
				errc <- fmt.Errorf("stream %d: write: %w", i, err)
				return
			}
			if !bytes.Equal(got, msg) {
				errc <- fmt.Errorf("stream %d: echoed %d bytes that differ from the %d sent", i, len(got), len(msg))
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if sr, ok := ep.(sdk.StatsReporter); ok {
		if got := sr.Stats().Streams; got != 0 {
			t.Errorf("Stats().Streams = %d after every stream closed, want 0", got)
		}
	}
}
