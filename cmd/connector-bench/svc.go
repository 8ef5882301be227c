package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
)

// Service modes: the first byte a client sends picks what the service does
// with the connection. One listening port thus serves every measurement, so
// each anchor needs a single pipe to it.
const (
	modeEcho   = 'e' // echo every byte back
	modeSink   = 's' // read and discard everything
	modeSource = 'r' // write zeros until the client goes away
)

// bulkChunk is the write size of the bulk source and client.
const bulkChunk = 128 << 10

// runService is `connector-bench svc`: it listens on addr, prints
// "LISTEN <addr>" on stdout and serves until ctx is done.
func runService(ctx context.Context, log *slog.Logger, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("connector-bench: svc: %w", err)
	}
	fmt.Fprintf(os.Stdout, "LISTEN %s\n", ln.Addr())
	return serve(ctx, log, ln)
}

// serve runs the service on ln until ctx is done; it closes ln.
func serve(ctx context.Context, log *slog.Logger, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Warn("svc accept", "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c)
		}()
	}
}

// serveConn serves one client connection according to its mode byte.
func serveConn(c net.Conn) {
	defer c.Close()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case modeEcho:
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case modeSink:
		_, _ = io.Copy(io.Discard, c)
	case modeSource:
		buf := make([]byte, bulkChunk)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
}
