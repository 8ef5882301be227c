package streamkit

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Connection kinds: the fifth byte of every carrier connection.
const (
	kindControl        = 'C' // a session's control connection
	kindControlOrigins = 'c' // the same, of an agent that reads 'Q'
	kindData           = 'D' // a stream the connector asked for
	kindOpen           = 'O' // a stream the agent opened
	kindIdle           = 'I' // an idle link, bound to a stream later
)

// Status bytes the connector answers with.
const (
	statusOK       = 0
	statusBadPass  = 1
	statusLimit    = 2
	statusNoSuchID = 3
)

const magic = "REF1"

// handshakeTimeout bounds an agent connection's handshake on both sides.
const handshakeTimeout = 10 * time.Second

var (
	errMagic      = errors.New("streamkit: not the protocol (bad magic)")
	errBadMessage = errors.New("streamkit: malformed threshold message")
	errBadOrigin  = errors.New("streamkit: malformed origin message")
)

// header is what an agent sends first on every connection.
type header struct {
	kind    byte
	pass    []byte
	session uint64 // 'D', 'O'
	stream  uint64 // 'D'
}

// idCount is how many 8-byte ids follow the passcode for kind.
func idCount(kind byte) int {
	switch kind {
	case kindOpen:
		return 1
	case kindData:
		return 2
	}
	return 0
}

// appendHeader appends an agent's first bytes. The passcode is cut to
// 255 bytes (the connector then refuses it).
func appendHeader(b []byte, kind byte, pass string, ids ...uint64) []byte {
	if len(pass) > 255 {
		pass = pass[:255]
	}
	b = append(append(b, magic...), kind, byte(len(pass)))
	b = append(b, pass...)
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	return b
}

// readHeader reads an agent's first bytes: at most 6+255+16.
func readHeader(r io.Reader) (header, error) {
	var h [6]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return header{}, err
	}
	if string(h[:4]) != magic {
		return header{}, errMagic
	}
	hd := header{kind: h[4], pass: make([]byte, h[5])}
	if _, err := io.ReadFull(r, hd.pass); err != nil {
		return header{}, err
	}
	var ids [16]byte
	if _, err := io.ReadFull(r, ids[:8*idCount(hd.kind)]); err != nil {
		return header{}, err
	}
	hd.session, hd.stream = binary.BigEndian.Uint64(ids[:8]), binary.BigEndian.Uint64(ids[8:])
	return hd, nil
}

// passOK compares the passcode in constant time.
func (h header) passOK(want string) bool {
	return subtle.ConstantTimeCompare(h.pass, []byte(want)) == 1
}

// msg is one control message from the connector to an agent.
type msg struct {
	kind      byte          // 'P', 'Q', 'T', or any other byte (a sign of life)
	id        uint64        // 'P', 'Q': the stream id
	threshold time.Duration // 'T': the endpoint's heartbeat threshold
	origin    sdk.Origin    // 'Q': the stream's origin
}

// maxDigits bounds the decimal milliseconds of a 'T' message.
const maxDigits = 10

// requestMsg asks an agent for stream id: 'P' and the id, or, with an
// origin o and to an agent that reads it, 'Q', the id, o's length (1
// byte) and its wire form.
func requestMsg(id uint64, o sdk.Origin, withOrigin bool) []byte {
	if !withOrigin {
		return binary.BigEndian.AppendUint64([]byte{'P'}, id)
	}
	enc, err := o.AppendBinary(nil)
	if err != nil {
		enc = nil
	}
	b := binary.BigEndian.AppendUint64([]byte{'Q'}, id)
	b = append(b, byte(len(enc)))
	return append(b, enc...)
}

// thresholdMsg tells an agent the endpoint's threshold: 'T', whole
// milliseconds (rounded up, at least 1, at most 10 digits), ';'. None of
// its bytes is 'P', so agents that do not know it skip it.
func thresholdMsg(d time.Duration) []byte {
	ms := max(int64((d+time.Millisecond-1)/time.Millisecond), 1)
	ms = min(ms, 9_999_999_999)
	b := append([]byte{'T'}, strconv.FormatInt(ms, 10)...)
	return append(b, ';')
}

// readMsg reads one control message: at most 12 bytes, or
// 10+sdk.MaxOriginLen for a 'Q'.
func readMsg(r io.Reader) (msg, error) {
	var b [10]byte
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
		if _, err := io.ReadFull(r, b[1:10]); err != nil {
			return msg{}, err
		}
		m.id = binary.BigEndian.Uint64(b[1:9])
		if int(b[9]) > sdk.MaxOriginLen {
			return msg{}, errBadOrigin
		}
		enc := make([]byte, b[9])
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

// BeatInterval is how often an agent beats to a connector that told it
// threshold (zero: not told): a quarter of it, but at least 250 ms unless
// the threshold is under half a second (then half of it, at least 10 ms);
// a shorter positive interval of the agent's own wins. Not told, it is
// interval, or [sdk.DefaultHeartbeatInterval].
func BeatInterval(threshold, interval time.Duration) time.Duration {
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
