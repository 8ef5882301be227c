package tcp

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/iofog/iofog-connector/sdk"
)

// Our agents' hello:
//
//	0xF0 | "ICN" | version (1 byte) | role (1 byte) | passcode length (2 bytes, big endian) | passcode
//
// answered by one byte (answerOK and the refusals below). 0xF0 cannot start
// a legacy agent's passcode, which is ASCII.
const (
	magicByte       byte = 0xF0
	magicTail            = "ICN"
	protocolVersion byte = 1
	maxPasscode          = 4096
	helloHeader          = 1 + len(magicTail) + 1 + 1 + 2
)

// Roles a link of ours takes.
const (
	// rolePool is an idle link waiting to be bound to a client.
	rolePool byte = 'P'
	// roleOpen is a stream the agent starts; raw once accepted.
	roleOpen byte = 'O'
)

// Answers to a hello.
const (
	answerOK byte = iota
	answerBadPasscode
	answerLinkLimit
	answerIncompatible
)

// Single-byte frames on an idle pool link.
const (
	// frameBeat: agent→connector heartbeat, and the connector's echo.
	frameBeat byte = 'H'
	// frameBind: connector→agent, "a client is bound to this link".
	frameBind byte = 'B'
	// frameAck: agent→connector, the agent's last framed byte; raw after it.
	frameAck byte = 'A'
)

// The legacy protocol's fixed strings.
const (
	legacyAuthorized = "AUTHORIZED"
	legacyBeat       = "BEAT"
)

func appendHello(b []byte, role byte, passcode string) ([]byte, error) {
	if len(passcode) > maxPasscode {
		return nil, fmt.Errorf("tcp: %w: passcode longer than %d bytes", sdk.ErrInvalidConfig, maxPasscode)
	}
	b = append(b, magicByte)
	b = append(b, magicTail...)
	b = append(b, protocolVersion, role)
	b = binary.BigEndian.AppendUint16(b, uint16(len(passcode)))
	return append(b, passcode...), nil
}

// readHello reads the rest of a hello whose magic byte was already read
// and returns the role and the answer to send.
func readHello(r io.Reader, want string) (role, answer byte, err error) {
	var hdr [helloHeader - 1]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	if string(hdr[:len(magicTail)]) != magicTail {
		return 0, 0, fmt.Errorf("%w: bad magic", ErrProtocol)
	}
	version, role := hdr[len(magicTail)], hdr[len(magicTail)+1]
	if version != protocolVersion || (role != rolePool && role != roleOpen) {
		return role, answerIncompatible, nil
	}
	n := binary.BigEndian.Uint16(hdr[len(magicTail)+2:])
	if n > maxPasscode {
		return 0, 0, fmt.Errorf("%w: passcode length %d", ErrProtocol, n)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(r, got); err != nil {
		return 0, 0, err
	}
	if subtle.ConstantTimeCompare(got, []byte(want)) != 1 {
		return role, answerBadPasscode, nil
	}
	return role, answerOK, nil
}

// readAnswer reads the connector's answer and maps refusals to sdk errors.
func readAnswer(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("tcp: connector closed the connection during the handshake: %w", err)
		}
		return err
	}
	switch b[0] {
	case answerOK:
		return nil
	case answerBadPasscode:
		return sdk.ErrBadPasscode
	case answerLinkLimit:
		return sdk.ErrLinkLimit
	case answerIncompatible:
		return sdk.ErrIncompatible
	}
	return fmt.Errorf("%w: answer %d", ErrProtocol, b[0])
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
