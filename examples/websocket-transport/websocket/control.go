package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
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

// maxDigits bounds the decimal milliseconds of a 'T' message.
const maxDigits = 10

// errBadMessage is returned for a 'T' message that is not 1 to 10 digits
// and ';'.
var errBadMessage = errors.New("websocket: malformed threshold message")

// errBadOrigin is returned for a 'Q' message whose origin is malformed.
var errBadOrigin = errors.New("websocket: malformed origin message")

// originMsg asks an agent whose control connection is of kind
// kindControlOrigins for stream id, with the stream's origin: 'Q', the id
// (8 bytes), the origin's length (1 byte) and sdk.Origin's wire form.
// Only such agents are sent it: an agent of an earlier release would
// take its bytes for signs of life and never open the stream.
func originMsg(id uint64, o sdk.Origin) []byte {
	enc, err := o.AppendBinary(nil)
	if err != nil {
		enc = nil
	}
	b := binary.BigEndian.AppendUint64([]byte{'Q'}, id)
	b = append(b, byte(len(enc)))
	return append(b, enc...)
}

// thresholdMsg is the message that tells an agent the endpoint's
// threshold: 'T', whole milliseconds in ASCII decimal (at least 1), ';'.
// Its bytes are never 'P', so agents of earlier releases, which read any
// byte but 'P' as a sign of life, skip it.
func thresholdMsg(d time.Duration) []byte {
	ms := max(int64((d+time.Millisecond-1)/time.Millisecond), 1)
	ms = min(ms, 9_999_999_999)
	b := append([]byte{'T'}, strconv.FormatInt(ms, 10)...)
	return append(b, ';')
}

// readMsg reads one control message: at most 12 bytes ('T' and its
// digits), 9 ('P' and its id) or 10+sdk.MaxOriginLen ('Q').
func readMsg(r io.Reader) (msg, error) {
	var b [1 + maxDigits + 1]byte
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

// beatInterval is how often an agent beats to a connector that told
// threshold (zero: not told): a quarter of it, but at least 250 ms unless
// the threshold is under half a second (then half of it, at least 10 ms);
// a shorter positive interval of the agent's own is used as is. Not told,
// it is interval, or sdk.DefaultHeartbeatInterval.
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
