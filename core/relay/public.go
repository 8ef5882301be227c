package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// handshaker is implemented by *tls.Conn.
type handshaker interface {
	HandshakeContext(ctx context.Context) error
}

// ServePublic accepts public clients on ln and relays each over its own
// stream from ep.Open. A client that gets no stream within the wait timeout
// is closed.
//
// ServePublic owns ln. It returns nil once ctx is cancelled or ln is
// closed, after closing ln and every relayed connection and waiting for all
// of its goroutines.
func ServePublic(ctx context.Context, ln net.Listener, ep Opener, cfg PublicConfig) error {
	log := sdk.Logger(cfg.Logger)
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: relays end when we return
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or a similar transient fault: keep serving.
			backoff = nextBackoff(backoff)
			log.Warn("public accept failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			servePublicConn(ctx, c, ep, &cfg, log)
		}()
	}
}

func servePublicConn(ctx context.Context, c net.Conn, ep Opener, cfg *PublicConfig, log *slog.Logger) {
	if h, ok := c.(handshaker); ok {
		hctx, hcancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
		err := h.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			log.Debug("public client TLS handshake failed", sdk.AttrPeer, c.RemoteAddr().String(), "err", err)
			cfg.Counters.refuse()
			c.Close()
			return
		}
	}
	octx, ocancel := context.WithTimeout(ctx, cfg.WaitTimeout)
	s, err := ep.Open(octx)
	ocancel()
	if err != nil {
		if ctx.Err() == nil {
			cfg.Counters.refuse() // counted before the client can see the close
			log.Info("public client closed: no agent link", sdk.AttrPeer, c.RemoteAddr().String(), "err", err)
		}
		c.Close()
		return
	}
	cfg.Counters.begin()
	defer cfg.Counters.end()
	res, err := pipe.JoinWith(ctx, c, s, pipe.Options{IdleTimeout: cfg.IdleTimeout})
	cfg.Counters.record(res)
	if err != nil {
		log.Debug("public relay ended with an error", sdk.AttrPeer, c.RemoteAddr().String(), "err", err)
	}
}

// nextBackoff doubles d from 5 ms up to one second.
func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}
