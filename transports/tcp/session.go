package tcp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// session is the agent half. It is lazy: every Accept dials one pool link
// and every Open one stream; nothing is connected in between.
type session struct {
	t         *Transport
	cfg       sdk.DialConfig
	log       *slog.Logger
	interval  time.Duration
	threshold time.Duration

	ctx    context.Context // done once Close is called
	cancel context.CancelFunc
}

func newSession(t *Transport, cfg sdk.DialConfig) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		t:         t,
		cfg:       cfg,
		log:       sdk.Logger(cfg.Logger).With(sdk.AttrTransport, Name, sdk.AttrPeer, cfg.Addr),
		interval:  cfg.HeartbeatInterval,
		threshold: cfg.HeartbeatThreshold,
		ctx:       ctx,
		cancel:    cancel,
	}
	if s.threshold == 0 {
		s.threshold = sdk.DefaultHeartbeatThreshold
	}
	if s.interval == 0 {
		s.interval = min(sdk.DefaultHeartbeatInterval, s.threshold/4)
	}
	return s
}

// connect dials the connector and runs the hello for role. Until it
// returns, ctx or Close aborts it.
func (s *session) connect(ctx context.Context, role byte) (net.Conn, error) {
	if s.ctx.Err() != nil {
		return nil, fmt.Errorf("tcp: %w", sdk.ErrClosed)
	}
	hello, err := appendHello(nil, role, s.cfg.Passcode)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: s.t.cfg.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("tcp: dial %s: %w", s.cfg.Addr, err)
	}
	tuneLiveness(raw, s.threshold)
	abort := func() { raw.SetDeadline(time.Unix(1, 0)) }
	stop1 := context.AfterFunc(ctx, abort)
	stop2 := context.AfterFunc(s.ctx, abort)
	raw.SetDeadline(time.Now().Add(s.t.cfg.HandshakeTimeout))
	c := raw
	if s.cfg.TLS != nil {
		tc := s.cfg.TLS.Clone()
		if tc.ServerName == "" {
			if host, _, err := net.SplitHostPort(s.cfg.Addr); err == nil {
				tc.ServerName = host
			}
		}
		c = tls.Client(raw, tc)
	}
	_, err = c.Write(hello)
	if err == nil {
		err = readAnswer(c)
	}
	ok1, ok2 := stop1(), stop2()
	switch {
	case !ok1:
		c.Close()
		return nil, ctx.Err()
	case !ok2:
		c.Close()
		return nil, fmt.Errorf("tcp: %w", sdk.ErrClosed)
	case err != nil:
		c.Close()
		return nil, fmt.Errorf("tcp: handshake with %s: %w", s.cfg.Addr, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// Accept implements [sdk.Session.Accept]: it dials one pool link, keeps it
// alive with heartbeats, and returns it as a bare stream once the
// connector binds a client to it.
func (s *session) Accept(ctx context.Context) (net.Conn, error) {
	c, err := s.connect(ctx, rolePool)
	if err != nil {
		return nil, err
	}
	var (
		wmu   sync.Mutex
		bound bool
		wg    sync.WaitGroup
	)
	beatCtx, stopBeats := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-beatCtx.Done():
				return
			case <-t.C:
			}
			wmu.Lock()
			if !bound {
				c.SetWriteDeadline(time.Now().Add(s.threshold))
				if _, err := c.Write([]byte{frameBeat}); err != nil {
					c.SetReadDeadline(time.Unix(1, 0)) // wake the reader
				}
			}
			wmu.Unlock()
		}
	}()
	abort := func() { c.SetReadDeadline(time.Unix(1, 0)) }
	stop1 := context.AfterFunc(ctx, abort)
	stop2 := context.AfterFunc(s.ctx, abort)
	err = s.idle(c, &wmu, &bound)
	stopBeats()
	wg.Wait()
	ok1, ok2 := stop1(), stop2()
	switch {
	case err == nil && ok1 && ok2:
		c.SetDeadline(time.Time{})
		return c, nil
	case !ok1:
		err = ctx.Err()
	case !ok2:
		err = fmt.Errorf("tcp: %w", sdk.ErrClosed)
	default:
		err = fmt.Errorf("tcp: idle link to %s: %w", s.cfg.Addr, err)
	}
	c.Close()
	return nil, err
}

// idle reads an idle link's frames until the connector binds it.
func (s *session) idle(c net.Conn, wmu *sync.Mutex, bound *bool) error {
	var b [1]byte
	for {
		c.SetReadDeadline(time.Now().Add(s.threshold))
		if _, err := c.Read(b[:]); err != nil {
			return err
		}
		switch b[0] {
		case frameBeat:
		case frameBind:
			wmu.Lock()
			*bound = true
			c.SetWriteDeadline(time.Now().Add(s.threshold))
			_, err := c.Write([]byte{frameAck})
			wmu.Unlock()
			return err
		default:
			return fmt.Errorf("%w: frame %q on an idle link", ErrProtocol, b[0])
		}
	}
}

// Open implements [sdk.Session.Open]: it dials a stream in the "open"
// role, a bare byte pipe once the connector accepted it.
func (s *session) Open(ctx context.Context) (net.Conn, error) {
	return s.connect(ctx, roleOpen)
}

// Close implements [sdk.Session.Close]. It aborts pending Accept and Open
// calls, whose links are closed.
func (s *session) Close() error {
	s.cancel()
	return nil
}

// Lazy reports that the session makes one connection per stream and never
// fails as a whole: an error from Accept or Open concerns one link. The
// agent runner (sdk/agent) keeps such a session across link failures.
func (s *session) Lazy() bool { return true }

var _ sdk.Session = (*session)(nil)
