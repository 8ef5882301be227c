package tcp

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Our agents' hello, version 1:
//
//	0xF0 | "ICN" | 0x01 | role (1 byte) | passcode length (2 bytes, big endian) | passcode
//
// answered by one byte (answerOK and the refusals below). Version 2 adds
// the agent instance after the passcode:
//
//	0xF0 | "ICN" | 0x02 | role | passcode length (2) | passcode | instance (16 bytes)
//
// and answers a refusal with one byte, but an acceptance with answerOK
// followed by the endpoint's heartbeat threshold in milliseconds (4 bytes,
// big endian, at least 1). A version the connector does not speak is
// answered answerIncompatible before the passcode is read. 0xF0 cannot start
// a legacy agent's passcode, which is ASCII.
//
// Version 3 has the hello and answer of version 2; it announces that the
// agent reads an origin in the bind frame of a pool link:
//
//	'B' | origin length (1 byte, at most sdk.MaxOriginLen) | origin
//
// where the origin is [sdk.Origin]'s wire form (length 0: none). The
// connector sends that frame to version 3 links only, and a plain 'B' to
// older agents, whose streams then carry no origin.
//
// Version 4 has the hello, answer and bind frame of version 3, and drops
// the agent's acknowledgement: the link is a bare byte pipe right after
// the bind frame, which the connector follows with the client's bytes
// without waiting a round trip. An agent that cannot reach its local
// service closes the link, which the client sees as a closed connection
// (as it does after an acknowledged bind of version 3).
const (
	magicByte   byte = 0xF0
	magicTail        = "ICN"
	protocolV1  byte = 1
	protocolV2  byte = 2
	protocolV3  byte = 3
	protocolV4  byte = 4
	maxPasscode      = 4096
	helloHeader      = 1 + len(magicTail) + 1 + 1 + 2
	instanceLen      = 16
	// maxHello is the most bytes a hello can take.
	maxHello = helloHeader + maxPasscode + instanceLen
)

// protocolNewest is what our agents try first and the newest a connector
// reads.
const protocolNewest = protocolV4

// Roles a link of ours takes.
const (
	// rolePool is an idle link waiting to be bound to a client.
	rolePool byte = 'P'
	// roleOpen is a stream the agent starts; raw once accepted.
	roleOpen byte = 'O'
	// roleControl (version 2) is one agent instance's liveness link: never
	// bound, it beats for every stream the connector handed out for that
	// instance, which are bare byte pipes and cannot beat themselves.
	roleControl byte = 'C'
)

// Answers to a hello.
const (
	answerOK byte = iota
	answerBadPasscode
	answerLinkLimit
	answerIncompatible
)

// Single-byte frames on an idle pool link and on a control link.
const (
	// frameBeat: agent→connector heartbeat, and the connector's echo.
	frameBeat byte = 'H'
	// frameBind: connector→agent, "a client is bound to this link".
	frameBind byte = 'B'
	// frameAck: agent→connector, the agent's last framed byte; raw after
	// it. Versions 1 to 3 only.
	frameAck byte = 'A'
	// frameBye: agent→connector on a control link, its last byte: the
	// instance holds no stream any more, so the control link's end must
	// not close any.
	frameBye byte = 'G'
)

// The legacy protocol's fixed strings.
const (
	legacyAuthorized = "AUTHORIZED"
	legacyBeat       = "BEAT"
)

// instanceID names one agent session (version 2). The connector closes
// every stream it handed out for an instance whose control link ended or
// fell silent.
type instanceID [instanceLen]byte

// hello is a parsed hello and the answer it gets.
type hello struct {
	version  byte
	role     byte
	instance instanceID // version 2 only
	answer   byte
}

// hasInstance reports whether the hello named an agent instance, that is
// whether the link's streams are covered by a control link.
func (h *hello) hasInstance() bool { return h.version >= protocolV2 }

// instanceRef returns the hello's instance, or nil for version 1.
func (h *hello) instanceRef() *instanceID {
	if !h.hasInstance() {
		return nil
	}
	id := h.instance
	return &id
}

// appendHello appends a hello of the given version to b.
func appendHello(b []byte, version, role byte, passcode string, inst instanceID) ([]byte, error) {
	if len(passcode) > maxPasscode {
		return nil, fmt.Errorf("tcp: %w: passcode longer than %d bytes", sdk.ErrInvalidConfig, maxPasscode)
	}
	b = append(b, magicByte)
	b = append(b, magicTail...)
	b = append(b, version, role)
	b = binary.BigEndian.AppendUint16(b, uint16(len(passcode)))
	b = append(b, passcode...)
	if version >= protocolV2 {
		b = append(b, inst[:]...)
	}
	return b, nil
}

// readHello reads the rest of a hello whose magic byte was already read,
// at most maxHello-1 bytes, and returns it with the answer to send. An
// error means the bytes were not a hello; the connection is then closed
// without an answer.
func readHello(r io.Reader, want string) (hello, error) {
	var hdr [helloHeader - 1]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return hello{}, err
	}
	return readHelloRest(r, hdr, want)
}

// readHelloRest is readHello once the header after the magic byte, hdr,
// was read: it reads the passcode and the instance in one go, at most
// maxPasscode+instanceLen bytes.
func readHelloRest(r io.Reader, hdr [helloHeader - 1]byte, want string) (hello, error) {
	var h hello
	if string(hdr[:len(magicTail)]) != magicTail {
		return h, fmt.Errorf("%w: bad magic", ErrProtocol)
	}
	h.version, h.role = hdr[len(magicTail)], hdr[len(magicTail)+1]
	switch {
	case h.version == protocolV1 && (h.role == rolePool || h.role == roleOpen):
	case h.version >= protocolV2 && h.version <= protocolNewest && (h.role == rolePool || h.role == roleOpen || h.role == roleControl):
	default:
		h.answer = answerIncompatible
		return h, nil
	}
	n := int(binary.BigEndian.Uint16(hdr[len(magicTail)+2:]))
	if n > maxPasscode {
		return h, fmt.Errorf("%w: passcode length %d", ErrProtocol, n)
	}
	body := n
	if h.hasInstance() {
		body += instanceLen
	}
	got := make([]byte, body)
	if _, err := io.ReadFull(r, got); err != nil {
		return h, err
	}
	copy(h.instance[:], got[n:])
	h.answer = answerBadPasscode
	if subtle.ConstantTimeCompare(got[:n], []byte(want)) == 1 {
		h.answer = answerOK
	}
	return h, nil
}

// appendAnswer appends the answer to h: one byte, and for an accepted
// version 2 hello the heartbeat threshold in milliseconds.
func appendAnswer(b []byte, h hello, threshold time.Duration) []byte {
	b = append(b, h.answer)
	if h.answer == answerOK && h.hasInstance() {
		ms := min(max(threshold.Milliseconds(), 1), math.MaxUint32)
		b = binary.BigEndian.AppendUint32(b, uint32(ms))
	}
	return b
}

// readAnswer reads the connector's answer to a hello of the given version
// and maps refusals to sdk errors. For version 2 it returns the endpoint's
// heartbeat threshold; for version 1, zero. It reads the answer of a
// version 2 hello in one go: a refusal is one byte, then the connector
// closes, and nothing follows an acceptance before the agent speaks.
func readAnswer(r io.Reader, version byte) (time.Duration, error) {
	var b [5]byte
	want := 1
	if version >= protocolV2 {
		want = len(b)
	}
	n, err := io.ReadFull(r, b[:want])
	if n == 0 {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("tcp: connector closed the connection during the handshake: %w", err)
		}
		return 0, err
	}
	switch b[0] {
	case answerOK:
	case answerBadPasscode:
		return 0, sdk.ErrBadPasscode
	case answerLinkLimit:
		return 0, sdk.ErrLinkLimit
	case answerIncompatible:
		return 0, sdk.ErrIncompatible
	default:
		return 0, fmt.Errorf("%w: answer %d", ErrProtocol, b[0])
	}
	if version < protocolV2 {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("tcp: reading the heartbeat threshold of the answer: %w", err)
	}
	ms := binary.BigEndian.Uint32(b[1:])
	if ms == 0 {
		return 0, fmt.Errorf("%w: heartbeat threshold 0 in the answer", ErrProtocol)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// readLegacyPasscode reads the rest of a legacy agent's passcode, whose
// first bytes were head (at most len(want) of them), and reports whether
// it is want. It reads exactly len(want)-len(head) bytes (a legacy agent
// sends no length and no terminator).
func readLegacyPasscode(r io.Reader, head []byte, want string) (bool, error) {
	if len(want) == 0 {
		return false, fmt.Errorf("%w: empty passcode", ErrProtocol)
	}
	if len(head) > len(want) {
		return false, fmt.Errorf("%w: %d bytes read for a %d-byte passcode", ErrProtocol, len(head), len(want))
	}
	got := make([]byte, len(want))
	copy(got, head)
	if _, err := io.ReadFull(r, got[len(head):]); err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, []byte(want)) == 1, nil
}

// isBeats reports whether b is one or more legacy heartbeats and nothing
// else ("BEAT", "BEATBEAT", ...), which a legacy agent may coalesce.
func isBeats(b []byte) bool {
	if len(b) == 0 || len(b)%len(legacyBeat) != 0 {
		return false
	}
	for i := 0; i < len(b); i += len(legacyBeat) {
		if string(b[i:i+len(legacyBeat)]) != legacyBeat {
			return false
		}
	}
	return true
}

// appendBind appends the bind frame for a link of the given version: a
// bare frameBind before version 3, and from version 3 on the origin o
// (when ok) after it.
func appendBind(b []byte, version byte, o sdk.Origin, ok bool) []byte {
	b = append(b, frameBind)
	if version < protocolV3 {
		return b
	}
	var enc []byte
	if ok {
		enc, _ = o.AppendBinary(make([]byte, 0, sdk.MaxOriginLen))
	}
	b = append(b, byte(len(enc)))
	return append(b, enc...)
}

// readBindOrigin reads the rest of a version 3 bind frame whose frameBind
// byte was read: at most 1+sdk.MaxOriginLen bytes. ok is false when the
// connector sent no origin. A length over sdk.MaxOriginLen or an origin
// that does not parse is an error wrapping ErrProtocol: the link is then
// dropped, unacknowledged.
func readBindOrigin(r io.Reader) (o sdk.Origin, ok bool, err error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return o, false, err
	}
	if n[0] == 0 {
		return o, false, nil
	}
	if int(n[0]) > sdk.MaxOriginLen {
		return o, false, fmt.Errorf("%w: bind origin of %d bytes", ErrProtocol, n[0])
	}
	buf := make([]byte, n[0])
	if _, err := io.ReadFull(r, buf); err != nil {
		return o, false, err
	}
	if err := o.UnmarshalBinary(buf); err != nil {
		return o, false, fmt.Errorf("%w: bind origin: %w", ErrProtocol, err)
	}
	return o, true, nil
}
