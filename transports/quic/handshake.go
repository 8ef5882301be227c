package quic

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/iofog/iofog-connector/sdk"
)

// The handshake an agent sends before yamux starts:
//
//	"IOFY" | version (1 byte) | passcode length (2 bytes, big endian) | passcode
//
// and the connector's one-byte answer.
const (
	magic            = "IOFY"
	version     byte = 1
	maxPasscode      = 4096
)

// Answers to the handshake.
const (
	answerOK byte = iota
	answerBadPasscode
	answerLinkLimit
	answerIncompatible
)

func writeHello(w io.Writer, passcode string) error {
	if len(passcode) > maxPasscode {
		return fmt.Errorf("quic: %w: passcode longer than %d bytes", sdk.ErrInvalidConfig, maxPasscode)
	}
	b := make([]byte, 0, len(magic)+3+len(passcode))
	b = append(b, magic...)
	b = append(b, version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(passcode)))
	b = append(b, passcode...)
	_, err := w.Write(b)
	return err
}

// readHello reads an agent's hello and returns the answer to send: ok only
// when the passcode matches want.
func readHello(r io.Reader, want string) (byte, error) {
	var hdr [len(magic) + 3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	if string(hdr[:len(magic)]) != magic {
		return 0, ErrProtocol
	}
	if hdr[len(magic)] != version {
		return answerIncompatible, nil
	}
	n := binary.BigEndian.Uint16(hdr[len(magic)+1:])
	if n > maxPasscode {
		return 0, ErrProtocol
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(r, got); err != nil {
		return 0, err
	}
	if subtle.ConstantTimeCompare(got, []byte(want)) != 1 {
		return answerBadPasscode, nil
	}
	return answerOK, nil
}

// readAnswer reads the connector's answer and maps refusals to sdk errors.
func readAnswer(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("quic: connector closed the connection during the handshake: %w", err)
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
