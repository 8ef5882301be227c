package websocket

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	xws "golang.org/x/net/websocket"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/streamkit"
)

// A stream's frames: binary frames carry data, the text frame "FIN" is a
// half-close (the peer reads io.EOF and may go on writing). WebSocket
// close frames cannot half-close: the protocol expects the peer to answer
// one and hang up.

// frameReader is what the WebSocket package's frame reader offers (its
// type is unexported; its methods are not).
type frameReader interface {
	io.Reader
	PayloadType() byte
	TrailerReader() io.Reader
	Len() int
}

// maxTextFrame bounds what a stream keeps of a text frame: "FIN" is the
// only one it sends.
const maxTextFrame = 125

const finMessage = "FIN"

// stream is one WebSocket connection seen as a net.Conn with half-close.
//
// Close is graceful: it sends the FIN message (unless CloseWrite did)
// before closing the connection, so the peer reads io.EOF, as from a TCP
// close. Abort closes the connection without it: the peer then reads
// io.ErrUnexpectedEOF (a connection that ended without FIN), which tells
// a relay that the stream broke (its agent was lost) rather than ended.
type stream struct {
	ws  *xws.Conn
	raw net.Conn // the connection under the WebSocket, for addresses and deadlines

	rmu       sync.Mutex
	frame     frameReader // the binary frame being read, nil between frames
	eof       bool
	readLimit int // the largest frame read, header included

	wmu    sync.Mutex // one frame at a time on raw
	masked bool       // the client's side: its frames are masked

	fin  atomic.Bool // the FIN message was sent
	once sync.Once
	done chan struct{} // closed by Close and Abort
}

func newStream(ws *xws.Conn, raw net.Conn, readLimit int) *stream {
	ws.PayloadType = xws.BinaryFrame
	if readLimit <= 0 {
		readLimit = xws.DefaultMaxPayloadBytes
	}
	return &stream{ws: ws, raw: raw, done: make(chan struct{}), readLimit: readLimit, masked: ws.IsClientConn()}
}

// Read reads a binary frame's payload straight into b, frame by frame
// (a frame is never buffered whole: no allocation per frame), and takes
// the text frame "FIN" as the end of the stream.
func (s *stream) Read(b []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for {
		if s.eof {
			return 0, io.EOF
		}
		if s.frame == nil {
			f, err := s.next()
			if err != nil {
				return 0, err
			}
			if f == nil {
				continue // a text frame
			}
			s.frame = f
		}
		if len(b) == 0 {
			return 0, nil
		}
		// Read the frame on while b has room: the rest of a frame is on
		// its way (its sender wrote it whole), and one larger read and
		// write downstream beat several small ones.
		n, err := s.frame.Read(b)
		for err == nil && n < len(b) {
			var m int
			m, err = s.frame.Read(b[n:])
			n += m
		}
		if err == io.EOF {
			if tr := s.frame.TrailerReader(); tr != nil {
				io.Copy(io.Discard, tr)
			}
			s.frame, err = nil, nil
			if n == 0 {
				continue
			}
		}
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = io.ErrUnexpectedEOF // cut inside a frame: the peer was lost
		}
		return n, err
	}
}

// control handles a control frame: a ping is answered with a pong
// carrying its payload; a close frame ends the stream without FIN (the
// peer was lost or gave up; the connection is closed by Close or Abort).
func (s *stream) control(f io.Reader) error {
	cf, _ := f.(frameReader)
	if cf == nil {
		return errors.New("websocket: unexpected frame reader")
	}
	var buf [maxTextFrame]byte
	n, err := io.ReadFull(cf, buf[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	if _, err := io.Copy(io.Discard, cf); err != nil {
		return io.ErrUnexpectedEOF
	}
	if tr := cf.TrailerReader(); tr != nil {
		io.Copy(io.Discard, tr)
	}
	switch cf.PayloadType() {
	case xws.CloseFrame:
		return io.ErrUnexpectedEOF
	case xws.PingFrame:
		return s.writeFrame(opPong, buf[:n])
	}
	return nil // a pong
}

// next reads the next data frame's header: a binary frame is returned to
// be read; a text frame is read whole (FIN sets eof) and nil returned.
// Control frames are answered by the WebSocket package.
func (s *stream) next() (frameReader, error) {
	for {
		raw, err := s.ws.NewFrameReader()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF // no FIN: the peer was lost
			}
			return nil, err
		}
		switch raw.PayloadType() {
		case xws.PingFrame, xws.PongFrame, xws.CloseFrame:
			// Answered here, not by the WebSocket package, whose pong
			// would not wait for a frame this stream is writing.
			if err := s.control(raw); err != nil {
				return nil, err
			}
			continue
		}
		h, err := s.ws.HandleFrame(raw)
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF // a close frame, without FIN
			}
			return nil, err
		}
		if h == nil {
			continue // ping or pong, answered
		}
		f, ok := h.(frameReader)
		if !ok {
			return nil, errors.New("websocket: unexpected frame reader")
		}
		if f.Len() < 0 || f.Len() > s.readLimit {
			return nil, fmt.Errorf("websocket: a frame of %d bytes is over the read limit of %d: %w", f.Len(), s.readLimit, xws.ErrFrameTooLarge)
		}
		if f.PayloadType() == xws.BinaryFrame {
			return f, nil
		}
		// A text frame: FIN, or one this release does not know, skipped.
		msg, err := io.ReadAll(io.LimitReader(f, maxTextFrame+1))
		if err == nil {
			_, err = io.Copy(io.Discard, f)
		}
		if err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		if tr := f.TrailerReader(); tr != nil {
			io.Copy(io.Discard, tr)
		}
		if string(msg) == finMessage {
			s.eof = true
			return nil, nil
		}
	}
}

// Write sends b as one binary frame, in one write to the connection
// (header and payload, masked on the client's side, built in a pooled
// buffer): the WebSocket package's writer copies the start of each frame
// into a 4 KiB buffer and writes the rest apart, and allocates a masked
// copy of every client frame.
func (s *stream) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for off := 0; off < len(b); {
		n := min(len(b)-off, maxWriteFrame)
		if err := s.writeFrame(opBinary, b[off:off+n]); err != nil {
			return off, err
		}
		off += n
	}
	return len(b), nil
}

// CloseWrite sends the half-close message.
func (s *stream) CloseWrite() error {
	if s.fin.Swap(true) {
		return nil
	}
	return s.writeFrame(opText, []byte(finMessage))
}

// WebSocket opcodes (RFC 6455, 5.2).
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPong   = 0xA
)

// maxWriteFrame is the largest frame Write sends: larger writes are
// split, so that a pooled buffer holds any frame.
const maxWriteFrame = 64 << 10

// frameBufs pools the buffers frames are built in (header and payload).
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxWriteFrame+14); return &b }}

// writeFrame sends one final frame of opcode op carrying p (at most
// maxWriteFrame bytes) in one write.
func (s *stream) writeFrame(op byte, p []byte) error {
	bp := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(bp)
	f := append((*bp)[:0], 0x80|op)
	maskBit := byte(0)
	if s.masked {
		maskBit = 0x80
	}
	switch n := len(p); {
	case n <= 125:
		f = append(f, maskBit|byte(n))
	case n < 1<<16:
		f = append(f, maskBit|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, maskBit|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if s.masked {
		var key [4]byte
		rand.Read(key[:]) // crypto/rand never fails
		f = append(f, key[:]...)
		start := len(f)
		f = append(f, p...)
		mask(f[start:], key)
	} else {
		f = append(f, p...)
	}
	*bp = f
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.raw.Write(f)
	return err
}

// mask XORs b with key in place (RFC 6455, 5.3), eight bytes at a time.
func mask(b []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i%4]
	}
}

// finTimeout bounds the FIN message Close sends: a peer that stopped
// reading does not hold Close.
const finTimeout = time.Second

// Close sends FIN, if CloseWrite did not, and closes the connection.
func (s *stream) Close() error {
	return s.end(func() {
		if !s.fin.Swap(true) {
			s.raw.SetWriteDeadline(time.Now().Add(finTimeout))
			s.writeFrame(opText, []byte(finMessage))
		}
	})
}

// Abort closes the connection without FIN: the peer reads
// io.ErrUnexpectedEOF (streamkit.Aborter).
func (s *stream) Abort() error { return s.end(func() {}) }

func (s *stream) end(before func()) error {
	var err error
	s.once.Do(func() {
		before()
		close(s.done)
		err = s.raw.Close()
	})
	return err
}

func (s *stream) LocalAddr() net.Addr                { return s.raw.LocalAddr() }
func (s *stream) RemoteAddr() net.Addr               { return s.raw.RemoteAddr() }
func (s *stream) SetDeadline(t time.Time) error      { return s.raw.SetDeadline(t) }
func (s *stream) SetReadDeadline(t time.Time) error  { return s.raw.SetReadDeadline(t) }
func (s *stream) SetWriteDeadline(t time.Time) error { return s.raw.SetWriteDeadline(t) }

var (
	_ net.Conn          = (*stream)(nil)
	_ sdk.CloseWriter   = (*stream)(nil)
	_ streamkit.Aborter = (*stream)(nil)
)
