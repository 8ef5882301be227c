package reftransport

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// msg is one control message from the connector to an agent.
type msg struct {
	kind      byte          // 'P' (open a stream), 'Q' (open one, with its origin), 'T' (threshold), or any other byte (a sign of life)
	id        uint64        // 'P', 'Q': the stream id
	threshold time.Duration // 'T': the endpoint's heartbeat threshold
	origin    sdk.Origin    // 'Q': the stream's origin
}

const maxDigits = 10

var (
	errBadMessage = errors.New("ref: malformed threshold message")
	errBadOrigin  = errors.New("ref: malformed origin message")
)

// thresholdMsg is 'T', whole milliseconds (at least 1) in ASCII decimal,
// ';'. None of its bytes is 'P'.
func thresholdMsg(d time.Duration) []byte {
	ms := max(int64((d+time.Millisecond-1)/time.Millisecond), 1)
	ms = min(ms, 9_999_999_999)
	b := append([]byte{'T'}, strconv.FormatInt(ms, 10)...)
	return append(b, ';')
}

// originMsg is 'Q', the stream id (8 bytes), the origin's length (1
// byte) and its wire form: a stream request ('P') with the stream's
// origin.
func originMsg(id uint64, o sdk.Origin) []byte {
	enc, err := o.AppendBinary(nil)
	if err != nil {
		enc = nil
	}
	b := binary.BigEndian.AppendUint64([]byte{'Q'}, id)
	b = append(b, byte(len(enc)))
	return append(b, enc...)
}

// readMsg reads one control message: at most 12 bytes, or 10 plus
// sdk.MaxOriginLen for 'Q'.
func readMsg(r io.Reader) (msg, error) {
	var b [9]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return msg{}, err
	}
	m := msg{kind: b[0]}
	switch m.kind {
	case 'P':
		if _, err := io.ReadFull(r, b[1:9]); err != nil {
			return msg{}, err
		}
		m.id = binary.BigEndian.Uint64(b[1:9])
	case 'Q':
		if _, err := io.ReadFull(r, b[1:9]); err != nil {
			return msg{}, err
		}
		m.id = binary.BigEndian.Uint64(b[1:9])
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return msg{}, err
		}
		if int(n[0]) > sdk.MaxOriginLen {
			return msg{}, errBadOrigin
		}
		enc := make([]byte, n[0])
		if _, err := io.ReadFull(r, enc); err != nil {
			return msg{}, err
		}
		if err := m.origin.UnmarshalBinary(enc); err != nil {
			return msg{}, fmt.Errorf("%w: %w", errBadOrigin, err)
		}
	case 'T':
		var ms int64
		for i := 0; ; i++ {
			if _, err := io.ReadFull(r, b[:1]); err != nil {
				return msg{}, err
			}
			if b[0] == ';' && i > 0 {
				break
			}
			if b[0] < '0' || b[0] > '9' || i == maxDigits {
				return msg{}, errBadMessage
			}
			ms = ms*10 + int64(b[0]-'0')
		}
		if ms == 0 {
			return msg{}, errBadMessage
		}
		m.threshold = time.Duration(ms) * time.Millisecond
	}
	return m, nil
}

// beatInterval: a quarter of the threshold told (at least 250 ms, or half
// of a threshold under half a second, at least 10 ms), or a shorter
// interval of the agent's own; not told, interval or the sdk default.
func beatInterval(threshold, interval time.Duration) time.Duration {
	if threshold <= 0 {
		if interval > 0 {
			return interval
		}
		return sdk.DefaultHeartbeatInterval
	}
	every := min(max(threshold/4, 250*time.Millisecond), threshold/2)
	every = max(every, 10*time.Millisecond)
	if interval > 0 && interval < every {
		every = interval
	}
	return every
}

// refStream is a stream connection tracked by its session until it
// closes.
type refStream struct {
	net.Conn
	once    sync.Once
	onClose func()

	origin    sdk.Origin // set before the stream is handed out
	hasOrigin bool
}

// Origin implements [sdk.OriginStream].
func (c *refStream) Origin() (sdk.Origin, bool) { return c.origin, c.hasOrigin }

// CloseWrite half-closes the connection.
func (c *refStream) CloseWrite() error {
	if cw, ok := c.Conn.(sdk.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Close closes the connection.
func (c *refStream) Close() error { return c.end(c.Conn.Close) }

// Abort resets the connection (under TLS too, without close_notify): the
// peer reads an error, not EOF.
func (c *refStream) Abort() error {
	return c.end(func() error {
		raw := c.Conn
		if tc, ok := raw.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		return raw.Close()
	})
}

func (c *refStream) end(close func() error) error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = close()
		c.onClose()
	})
	return err
}

// streamSet holds the streams of a session that are not closed yet.
type streamSet struct {
	mu sync.Mutex
	m  map[*refStream]struct{}
}

// add tracks c until it closes and returns it wrapped.
func (ss *streamSet) add(c net.Conn) *refStream {
	st := &refStream{Conn: c}
	st.onClose = func() {
		ss.mu.Lock()
		delete(ss.m, st)
		ss.mu.Unlock()
	}
	ss.mu.Lock()
	if ss.m == nil {
		ss.m = map[*refStream]struct{}{}
	}
	ss.m[st] = struct{}{}
	ss.mu.Unlock()
	return st
}

// abort aborts every stream tracked.
func (ss *streamSet) abort() {
	ss.mu.Lock()
	all := make([]*refStream, 0, len(ss.m))
	for st := range ss.m {
		all = append(all, st)
	}
	ss.mu.Unlock()
	for _, st := range all {
		st.Abort()
	}
}
