package muxkit

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/iofog/iofog-connector/sdk"
)

// The hello an agent sends before the multiplexer starts:
//
//	"IOFY" | version (1 byte) | passcode length (2 bytes, big endian) | passcode
//
// and the connector's one-byte [Answer].
const (
	magic            = "IOFY"
	version     byte = 1
	maxPasscode      = 4096
)

// Answer is the connector's one-byte answer to an agent's hello.
type Answer byte

// Answers to the hello.
const (
	// AnswerOK admits the agent; the multiplexer starts next.
	AnswerOK Answer = iota
	// AnswerBadPasscode refuses a wrong passcode ([sdk.ErrBadPasscode]).
	AnswerBadPasscode
	// AnswerLinkLimit refuses an agent because the endpoint is full
	// ([sdk.ErrLinkLimit]).
	AnswerLinkLimit
	// AnswerIncompatible refuses a hello of another version
	// ([sdk.ErrIncompatible]).
	AnswerIncompatible
)

// Handshake is the passcode exchange of one transport. Its zero value
// works; its methods are safe for concurrent use.
type Handshake struct {
	// Name prefixes the errors the handshake makes itself, as in
	// "yamux: ..."; empty means "muxkit".
	Name string
	// ErrProtocol is returned, or wrapped, when the peer sends bytes that
	// do not follow the handshake; nil means [ErrProtocol].
	ErrProtocol error
}

func (h Handshake) name() string {
	if h.Name == "" {
		return "muxkit"
	}
	return h.Name
}

func (h Handshake) errProtocol() error {
	if h.ErrProtocol == nil {
		return ErrProtocol
	}
	return h.ErrProtocol
}

// WriteHello sends an agent's hello carrying passcode. A passcode longer
// than 4096 bytes is refused with an error wrapping
// [sdk.ErrInvalidConfig]; write errors are returned as they are.
func (h Handshake) WriteHello(w io.Writer, passcode string) error {
	if len(passcode) > maxPasscode {
		return fmt.Errorf("%s: %w: passcode longer than %d bytes", h.name(), sdk.ErrInvalidConfig, maxPasscode)
	}
	b := make([]byte, 0, len(magic)+3+len(passcode))
	b = append(b, magic...)
	b = append(b, version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(passcode)))
	b = append(b, passcode...)
	_, err := w.Write(b)
	return err
}

// ReadHello reads an agent's hello and returns the answer to send:
// [AnswerOK] only when the passcode matches want (compared in constant
// time). Bytes that are no hello return the protocol error; read errors
// are returned as they are.
func (h Handshake) ReadHello(r io.Reader, want string) (Answer, error) {
	var hdr [len(magic) + 3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	if string(hdr[:len(magic)]) != magic {
		return 0, h.errProtocol()
	}
	if hdr[len(magic)] != version {
		return AnswerIncompatible, nil
	}
	n := binary.BigEndian.Uint16(hdr[len(magic)+1:])
	if n > maxPasscode {
		return 0, h.errProtocol()
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(r, got); err != nil {
		return 0, err
	}
	if subtle.ConstantTimeCompare(got, []byte(want)) != 1 {
		return AnswerBadPasscode, nil
	}
	return AnswerOK, nil
}

// WriteAnswer sends the connector's answer.
func WriteAnswer(w io.Writer, a Answer) error {
	_, err := w.Write([]byte{byte(a)})
	return err
}

// ReadAnswer reads the connector's answer: nil for [AnswerOK], else
// [sdk.ErrBadPasscode], [sdk.ErrLinkLimit] or [sdk.ErrIncompatible], an
// error wrapping the protocol error for an unknown answer, and one
// wrapping io.EOF or io.ErrUnexpectedEOF when the connector closed the
// connection instead of answering.
func (h Handshake) ReadAnswer(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: connector closed the connection during the handshake: %w", h.name(), err)
		}
		return err
	}
	switch Answer(b[0]) {
	case AnswerOK:
		return nil
	case AnswerBadPasscode:
		return sdk.ErrBadPasscode
	case AnswerLinkLimit:
		return sdk.ErrLinkLimit
	case AnswerIncompatible:
		return sdk.ErrIncompatible
	}
	return fmt.Errorf("%w: answer %d", h.errProtocol(), b[0])
}
