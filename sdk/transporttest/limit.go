package transporttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// limitStreams is the mapping limit StreamLimit plays.
const limitStreams = 3

// testStreamLimit checks what the core's enforcement of a mapping's
// maxconnections needs from a transport: the core sets MaxLinks to the
// limit and holds at most that many streams at once, closing each when its
// relay ends. So the endpoint must carry limitStreams streams at once from
// one agent with MaxLinks at limitStreams, and once the core closed them
// (the connector side alone, as the core does) the same number again,
// within a bound: a transport that keeps counting closed streams would
// make the limit lower than the Controller asked.
func testStreamLimit(t *testing.T, e *env) {
	cfg := e.endpointConfig()
	cfg.MaxLinks = limitStreams
	ep, addr := e.listen(cfg)
	s := e.dial(e.dialConfig(addr, cfg.Passcode))
	for round := range 3 {
		var cs, as []net.Conn
		for i := range limitStreams {
			c, a, err := limitPair(e, ep, s)
			if err != nil {
				t.Fatalf("round %d: stream %d of %d with MaxLinks %d: %v", round, i+1, limitStreams, limitStreams, err)
			}
			cs, as = append(cs, c), append(as, a)
		}
		for i := range cs {
			if err := exchange(cs[i], as[i], fmt.Sprintf("round %d stream %d", round, i)); err != nil {
				t.Fatalf("round %d: stream %d: %v", round, i, err)
			}
		}
		// The core closes its side; the agent side ends on its own.
		for _, c := range cs {
			CloseStream(ep, c)
		}
		for i, a := range as {
			var ne net.Error
			if _, err := ReadEnd(a, 20*time.Second); errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("round %d: stream %d: the agent's side did not end after the connector closed it: %v", round, i, err)
			}
			a.Close()
		}
	}
}

// limitPair pairs a stream, retrying for a while when the endpoint has
// not yet noticed that earlier streams were closed (sdk.ErrLinkLimit, or
// no link in time).
func limitPair(e *env, ep sdk.Endpoint, s sdk.Session) (c, a net.Conn, err error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, a, err = tryPair(e.ctx(3*time.Second), ep, s)
		if err == nil {
			e.track(c)
			e.track(a)
			return c, a, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("no stream within 15s: %w", err)
		}
		var ne net.Error
		timeout := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		if !errors.Is(err, sdk.ErrLinkLimit) && !timeout {
			return nil, nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
