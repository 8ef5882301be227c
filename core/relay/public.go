package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
	"github.com/iofog/iofog-connector/sdk/pipe"
)

// handshaker is implemented by *tls.Conn.
type handshaker interface {
	HandshakeContext(ctx context.Context) error
}

// Default caps on public clients waiting for an agent link (from accept,
// TLS handshake included, until a stream is bound), per mapping. A client
// waits at most PublicConfig.WaitTimeout, and only while every link is
// busy or, in a burst, for the moment its stream takes to open: a burst
// of a few hundred clients from one address (a load test, an office
// behind NAT) must get through, so the per-source cap stays above that.
const (
	// DefaultMaxWaiting caps the clients waiting on one mapping.
	DefaultMaxWaiting = 1024
	// DefaultMaxWaitingPerSource caps the clients of one source (an IPv4
	// address or an IPv6 /64) waiting on one mapping.
	DefaultMaxWaitingPerSource = 256
)

// ServePublic accepts public clients on ln and relays each over its own
// stream from ep.Open. A client that gets no stream within the wait timeout
// is closed; a client beyond the waiting caps (PublicConfig.MaxWaiting and
// MaxWaitingPerSource) is closed at once. Both are counted as refused and
// logged in aggregate: one INFO line per source per interval. Transient
// accept errors (out of descriptors...) are retried with backoff.
//
// ServePublic owns ln. It returns nil once ctx is cancelled or ln is
// closed, after closing ln and every relayed connection and waiting for all
// of its goroutines; it returns an error when accepting fails for good.
func ServePublic(ctx context.Context, ln net.Listener, ep Opener, cfg PublicConfig) error {
	log := sdk.Logger(cfg.Logger)
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = DefaultMaxWaiting
	}
	if cfg.MaxWaitingPerSource == 0 {
		cfg.MaxWaitingPerSource = DefaultMaxWaitingPerSource
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	waiting := admission.NewLimiter(cfg.MaxWaitingPerSource, cfg.MaxWaiting)
	refused := admission.NewTally(admission.TallyConfig{Logger: log, Message: "public clients refused"})
	defer refused.Close() // after the relays are gone
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: relays end when we return
	retry := admission.Retry{Logger: log, What: "accepting public clients"}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if retry.Wait(ctx, err) {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("relay: accepting public clients: %w", err)
		}
		retry.Reset()
		src := admission.Source(c.RemoteAddr())
		leave, ok := waiting.Acquire(src)
		if !ok {
			cfg.Counters.refuse(tooMany)
			refused.Add(src, "too many clients waiting for an agent link")
			c.Close()
			continue
		}
		wg.Add(1)
		go servePublicConn(ctx, c, ep, &cfg, log, leave, func(reason string) { refused.Add(src, reason) }, wg.Done)
	}
}

// servePublicConn relays one client. leave ends its waiting place once it
// has a stream or is refused; refuse logs a refusal in aggregate. finish
// runs once the client is refused or its relay has ended: the relay
// outlives servePublicConn and holds no goroutine while idle.
func servePublicConn(ctx context.Context, c net.Conn, ep Opener, cfg *PublicConfig, log *slog.Logger, leave func(), refuse func(string), finish func()) {
	relaying := false
	defer func() {
		if !relaying {
			finish()
		}
	}()
	defer leave()
	waited := cfg.Counters.wait()
	defer waited()
	if h, ok := c.(handshaker); ok {
		hctx, hcancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
		err := h.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			log.Debug("public client TLS handshake failed", sdk.AttrPeer, c.RemoteAddr().String(), "err", err)
			cfg.Counters.refuse(badTLS)
			if ctx.Err() == nil {
				refuse("TLS handshake: " + admission.Reason(err))
			}
			c.Close()
			return
		}
	}
	octx, ocancel := context.WithTimeout(ctx, cfg.WaitTimeout)
	if o, ok := sdk.OriginFromAddrs(c.RemoteAddr(), c.LocalAddr(), cfg.Proxy); ok {
		octx = sdk.WithOrigin(octx, o)
	}
	// The mapping's maxconnections: wait for a place, within the same
	// wait timeout as for a link.
	if err := cfg.Limit.acquire(octx); err != nil {
		ocancel()
		if ctx.Err() == nil {
			cfg.Counters.refuse(atLimit)
			log.Debug("public client closed: maxconnections reached", sdk.AttrPeer, c.RemoteAddr().String(), "maxconnections", cfg.Limit.Max())
			refuse(fmt.Sprintf("maxconnections %d reached: no relayed connection ended within %s", cfg.Limit.Max(), cfg.WaitTimeout))
		}
		c.Close()
		return
	}
	raw, err := ep.Open(octx)
	ocancel()
	if err != nil {
		cfg.Limit.release()
		if ctx.Err() == nil {
			cfg.Counters.refuse(noAgent) // counted before the client can see the close
			log.Debug("public client closed: no agent link", sdk.AttrPeer, c.RemoteAddr().String(), "err", err)
			reason := "no agent link within " + cfg.WaitTimeout.String()
			if !errors.Is(err, context.DeadlineExceeded) {
				reason = "no agent link: " + admission.Reason(err)
			}
			refuse(reason)
		}
		c.Close()
		return
	}
	s := hold(raw, ep, cfg.Limit)
	leave()
	waited()
	cfg.Counters.begin()
	relaying = true
	// The pipe gets the stream itself, so that a socket keeps splice.
	pipe.Start(ctx, c, s.Conn, cfg.Counters.pipeOptions(cfg.IdleTimeout), func(_ pipe.Result, err error) {
		cfg.Counters.end()
		s.done() // the pipe closed it
		if err != nil {
			log.Debug("public relay ended with an error", sdk.AttrPeer, c.RemoteAddr().String(), "err", err)
		}
		finish()
	})
}

// nextBackoff doubles d from 5 ms up to one second (ServePrivate's
// retries of a failing endpoint).
func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}
