package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errEchoMismatch is returned when an echo comes back different.
var errEchoMismatch = errors.New("connector-bench: echo mismatch")

// dialFunc opens one client connection to the service through an anchor.
type dialFunc func(ctx context.Context) (net.Conn, error)

// newDialer returns a dialFunc for addr, wrapped in TLS when tlsCfg is set.
func newDialer(addr string, tlsCfg *tls.Config) dialFunc {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tlsCfg == nil {
		return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	td := &tls.Dialer{NetDialer: d, Config: tlsCfg}
	return func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, "tcp", addr) }
}

// echoOnce writes msg (after the echo mode byte when first is set) and
// reads the same bytes back.
func echoOnce(c net.Conn, msg, buf []byte, first bool) error {
	out := msg
	if first {
		out = append([]byte{modeEcho}, msg...)
	}
	if _, err := c.Write(out); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
		return err
	}
	if !bytes.Equal(buf[:len(msg)], msg) {
		return errEchoMismatch
	}
	return nil
}

// latencyResult holds the sorted round-trip times of one ping-pong run.
type latencyResult struct {
	RTT []time.Duration
}

// pingBudget bounds the measured round trips of one ping-pong run in
// time, so a slow relay cannot stretch the harness: it then reports fewer
// than n round trips.
const pingBudget = 10 * time.Second

// pingPong does up to n round trips of size bytes on one connection, for
// at most pingBudget, each bounded by the context's deadline.
func pingPong(ctx context.Context, dial dialFunc, n, size int) (latencyResult, error) {
	c, err := dial(ctx)
	if err != nil {
		return latencyResult{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	msg := bytes.Repeat([]byte{'p'}, size)
	buf := make([]byte, size)
	// The first round trip dials the service behind the relay: warm-up.
	if err := echoOnce(c, msg, buf, true); err != nil {
		return latencyResult{}, fmt.Errorf("connector-bench: ping-pong warm-up: %w", err)
	}
	for range 100 {
		if err := echoOnce(c, msg, buf, false); err != nil {
			return latencyResult{}, err
		}
	}
	rtt := make([]time.Duration, 0, n)
	stop := time.Now().Add(pingBudget)
	for i := 0; i < n && (i%100 != 0 || time.Now().Before(stop)); i++ {
		msg[0] = byte(i)
		t0 := time.Now()
		if err := echoOnce(c, msg, buf, false); err != nil {
			return latencyResult{}, fmt.Errorf("connector-bench: ping-pong %d: %w", i, err)
		}
		rtt = append(rtt, time.Since(t0))
	}
	return latencyResult{RTT: sortDurations(rtt)}, nil
}

// rateResult is the outcome of a connection-rate run.
type rateResult struct {
	OK, Failed int64
	Elapsed    time.Duration
	FirstErr   error
}

// connRate runs workers loops of dial + 32-byte echo + close for dur.
func connRate(ctx context.Context, dial dialFunc, workers int, dur time.Duration) rateResult {
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{'c'}, 32)
			buf := make([]byte, 32)
			for time.Now().Before(stop) && ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := func() error {
					c, err := dial(cctx)
					if err != nil {
						return err
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					return echoOnce(c, msg, buf, true)
				}()
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	r := rateResult{OK: ok.Load(), Failed: failed.Load(), Elapsed: time.Since(start)}
	if e, isErr := firstErr.Load().(error); isErr {
		r.FirstErr = e
	}
	return r
}

// holdResult is the outcome of opening n held connections.
type holdResult struct {
	Conns    []net.Conn
	Failed   int
	FirstErr error
}

// close closes every held connection.
func (h *holdResult) close() {
	for _, c := range h.Conns {
		c.Close()
	}
	h.Conns = nil
}

// holdConns opens n connections, parallel at a time, verifies each with an
// echo, and keeps them open. It stops early when ctx is done.
func holdConns(ctx context.Context, dial dialFunc, n, parallel int) *holdResult {
	res := &holdResult{}
	var mu sync.Mutex
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			c, err := dial(cctx)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				msg := []byte(fmt.Sprintf("hold-%06d", i))
				err = echoOnce(c, msg, make([]byte, len(msg)), true)
				_ = c.SetDeadline(time.Time{})
				if err != nil {
					c.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				if res.FirstErr == nil {
					res.FirstErr = err
				}
				return
			}
			res.Conns = append(res.Conns, c)
		}(i)
	}
	wg.Wait()
	return res
}

// reverify echoes once more on every held connection and returns how many
// failed: a relay that dropped idle connections shows up here.
func reverify(conns []net.Conn) int {
	failed := 0
	msg := []byte("still-here")
	buf := make([]byte, len(msg))
	for _, c := range conns {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := echoOnce(c, msg, buf, false); err != nil {
			failed++
		}
	}
	return failed
}

// bulkResult is the outcome of a bulk transfer.
type bulkResult struct {
	Bytes   int64
	Elapsed time.Duration
}

// bitsPerSec returns the throughput in bit/s.
func (b bulkResult) bitsPerSec() float64 {
	if b.Elapsed <= 0 {
		return 0
	}
	return float64(b.Bytes) * 8 / b.Elapsed.Seconds()
}

// bulk moves data on streams connections for dur: upload writes to the
// sink, download reads from the source. Bytes are counted at the client.
func bulk(ctx context.Context, dial dialFunc, streams int, dur time.Duration, download bool) (bulkResult, error) {
	conns := make([]net.Conn, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	mode := byte(modeSink)
	if download {
		mode = modeSource
	}
	for range streams {
		c, err := dial(ctx)
		if err != nil {
			return bulkResult{}, err
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte{mode}); err != nil {
			return bulkResult{}, err
		}
	}
	var total atomic.Int64
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for _, c := range conns {
		_ = c.SetDeadline(deadline)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bulkChunk)
			for {
				var n int
				var err error
				if download {
					n, err = c.Read(buf)
				} else {
					n, err = c.Write(buf)
				}
				total.Add(int64(n))
				if err != nil {
					var ne net.Error
					if !(errors.As(err, &ne) && ne.Timeout()) {
						errs <- err
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return bulkResult{}, fmt.Errorf("connector-bench: bulk: %w", err)
	}
	return bulkResult{Bytes: total.Load(), Elapsed: elapsed}, nil
}
