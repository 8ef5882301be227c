package muxkit

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Session is the agent half of a multiplexing transport: one link to an
// endpoint. It implements [sdk.Session]; its methods are safe for
// concurrent use.
type Session struct {
	name    string
	mc      Conn
	version byte            // the hello version; from Version3 on, Accept reads origin headers
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc

	mu      sync.Mutex
	streams int
	closed  bool
}

// NewSession returns a session over mc, which it owns from here on. name
// prefixes the errors the session makes itself, as in "yamux: session
// open: ..."; empty means "muxkit".
func NewSession(name string, mc Conn) *Session {
	return NewSessionVersion(name, mc, Version1)
}

// NewSessionVersion is [NewSession] for a link whose hello had the given
// version: from [Version3] on, [Session.Accept] reads the origin header
// the connector writes at the start of each stream it opens, and the
// streams it returns report their origin ([sdk.OriginStream]).
func NewSessionVersion(name string, mc Conn, version byte) *Session {
	if name == "" {
		name = "muxkit"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Session{name: name, mc: mc, version: version, ctx: ctx, cancel: cancel}
}

// Conn returns the connection the session was made with.
func (s *Session) Conn() Conn { return s.mc }

// Accept implements [sdk.Session.Accept]: the next stream the connector
// opened. See [Session.Open] for the errors. On a [Version3] link it
// first reads the stream's origin header, within [HeaderTimeout]; a
// stream whose header is malformed or late is closed and the next one
// awaited, the session going on.
func (s *Session) Accept(ctx context.Context) (net.Conn, error) {
	if s.version < Version3 {
		return s.get(ctx, "accept", s.mc.AcceptStream)
	}
	for {
		c, err := s.get(ctx, "accept", s.mc.AcceptStream)
		if err != nil {
			return nil, err
		}
		st := c.(Stream)
		st.SetReadDeadline(time.Now().Add(HeaderTimeout))
		stop := context.AfterFunc(ctx, func() { st.SetReadDeadline(time.Unix(1, 0)) })
		o, ok, err := ReadOriginHeader(st, nil)
		if !stop() {
			// ctx ended: its deadline may land on the stream any time now.
			st.Close()
			return nil, ctx.Err()
		}
		if err != nil {
			st.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		st.SetReadDeadline(time.Time{})
		if !ok {
			return st, nil
		}
		return withOrigin(st, o), nil
	}
}

// Open implements [sdk.Session.Open]: a new stream to the connector. It
// returns ctx.Err() when ctx ends, [sdk.ErrClosed] once the session is
// closed, and an error satisfying errors.Is(err, net.ErrClosed) when the
// connection has ended or the connector takes no more streams, so that
// the caller redials.
func (s *Session) Open(ctx context.Context) (net.Conn, error) {
	return s.get(ctx, "open", s.mc.OpenStream)
}

func (s *Session) get(ctx context.Context, op string, f func(context.Context) (Stream, error)) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	st, err := f(cctx)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case s.ctx.Err() != nil:
			return nil, sdk.ErrClosed
		}
		if s.mc.GoneAway() {
			// The connector takes no more streams on this session: it is
			// as good as closed, and the agent should redial.
			return nil, fmt.Errorf("%s: session %s: %w: %w", s.name, op, err, net.ErrClosed)
		}
		// When the connection is gone for good (its end may be noticed a
		// moment after the call fails), say so in a way callers can test,
		// errors.Is(err, net.ErrClosed), so they redial at once.
		wait := time.NewTimer(time.Second)
		defer wait.Stop()
		select {
		case <-s.mc.Done():
			return nil, fmt.Errorf("%s: session %s: connection ended: %w: %w", s.name, op, err, net.ErrClosed)
		case <-wait.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: session %s: %w", s.name, op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.Close()
		return nil, sdk.ErrClosed
	}
	s.streams++
	st.OnClose(s.release)
	s.mu.Unlock()
	return st, nil
}

func (s *Session) release() {
	s.mu.Lock()
	s.streams--
	closeNow := s.closed && s.streams == 0
	s.mu.Unlock()
	if closeNow {
		s.mc.Close()
	}
}

// Close implements [sdk.Session.Close]. Pending Open and Accept calls
// return [sdk.ErrClosed]. With streams open, the connection stays up,
// refusing new streams ([Conn.GoAway]), until the last one closes.
// Later calls return nil.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	n := s.streams
	s.mu.Unlock()
	s.cancel()
	if n == 0 {
		return s.mc.Close()
	}
	s.mc.GoAway()
	return nil
}

var _ sdk.Session = (*Session)(nil)
