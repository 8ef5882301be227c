package muxkit_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/muxkit"
)

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// FuzzReadHello feeds arbitrary bytes to the connector's hello parser: it
// must not panic, must read at most one hello (4103 bytes), must admit
// only the right passcode in a version it knows, and must admit every
// hello WriteHello makes with that passcode.
func FuzzReadHello(f *testing.F) {
	for _, seed := range [][]byte{
		[]byte("IOFY\x02\x00\x02pw"),
		[]byte("IOFY\x01\x00\x02pw"),
		[]byte("IOFY\x02\x00\x04nope"),
		[]byte("IOFY\x03\x00\x02pw"),
		[]byte("IOFY\x02\xff\xff"),
		[]byte("IOFY\x02\x00\x05pw"),
		[]byte("GET / HTTP/1.1\r\n"),
		{},
	} {
		f.Add(seed, "pw")
	}
	f.Fuzz(func(t *testing.T, in []byte, want string) {
		cr := &countReader{r: bytes.NewReader(in)}
		a, hello, err := muxkit.Handshake{}.ReadHello(cr, want)
		if cr.n > 4103 {
			t.Fatalf("ReadHello read %d bytes, more than one hello", cr.n)
		}
		if err != nil {
			return
		}
		if a == muxkit.AnswerOK {
			if hello.Version < muxkit.Version1 || hello.Version > muxkit.Version {
				t.Fatalf("admitted a hello of version %d", hello.Version)
			}
			if !bytes.Equal(in[7:cr.n], []byte(want)) {
				t.Fatalf("admitted passcode %q, want %q", in[7:cr.n], want)
			}
		}
		if len(want) > 4096 {
			return
		}
		for _, v := range []byte{muxkit.Version1, muxkit.Version2, muxkit.Version3, muxkit.Version4} {
			var b bytes.Buffer
			if err := (muxkit.Handshake{Version: v}).WriteHello(&b, want); err != nil {
				t.Fatalf("WriteHello: %v", err)
			}
			a, hello, err := muxkit.Handshake{}.ReadHello(&b, want)
			if err != nil || a != muxkit.AnswerOK || hello.Version != v {
				t.Fatalf("own version %d hello: %d, version %d, %v", v, a, hello.Version, err)
			}
		}
	})
}

// FuzzReadAnswer feeds arbitrary bytes to the agent's answer parser, in
// both versions: it must not panic, must read at most one answer (5
// bytes), and must map every answer to nil, an sdk sentinel, the protocol
// error or a read error.
func FuzzReadAnswer(f *testing.F) {
	for _, seed := range [][]byte{
		{0}, {0, 0, 0, 0x0b, 0xb8}, {0, 0xff, 0xff, 0xff, 0xff}, {1}, {2}, {3}, {9}, {0, 0}, {},
	} {
		f.Add(seed, byte(2))
		f.Add(seed, byte(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, version byte) {
		if version < muxkit.Version1 || version > muxkit.Version {
			return
		}
		cr := &countReader{r: bytes.NewReader(in)}
		terms, err := muxkit.Handshake{Version: version}.ReadAnswer(cr)
		if cr.n > 5 {
			t.Fatalf("ReadAnswer read %d bytes", cr.n)
		}
		switch {
		case err == nil:
			if version == muxkit.Version1 && terms != (muxkit.Terms{}) {
				t.Fatalf("version 1 answer gave terms %+v", terms)
			}
			if terms.HeartbeatThreshold < 0 {
				t.Fatalf("negative threshold %v", terms.HeartbeatThreshold)
			}
		case errors.Is(err, sdk.ErrBadPasscode), errors.Is(err, sdk.ErrLinkLimit), errors.Is(err, sdk.ErrIncompatible),
			errors.Is(err, muxkit.ErrProtocol), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		default:
			t.Fatalf("ReadAnswer(% x): unexpected error %v", in, err)
		}
	})
}
