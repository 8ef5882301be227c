package websocket

import (
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

// frames is the codec a stream writes with: binary frames carry data,
// the text frame "FIN" is a half-close (the peer reads io.EOF and may go
// on writing). WebSocket close frames cannot half-close: the protocol
// expects the peer to answer one and hang up.
func frames() xws.Codec {
	return xws.Codec{
		Marshal: func(v any) ([]byte, byte, error) {
			if s, ok := v.(string); ok {
				return []byte(s), xws.TextFrame, nil
			}
			return v.([]byte), xws.BinaryFrame, nil
		},
	}
}

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
	ws    *xws.Conn
	raw   net.Conn // the connection under the WebSocket, for addresses and deadlines
	codec xws.Codec

	rmu       sync.Mutex
	frame     frameReader // the binary frame being read, nil between frames
	eof       bool
	readLimit int // the largest frame read, header included

	fin  atomic.Bool // the FIN message was sent
	once sync.Once
	done chan struct{} // closed by Close and Abort
}

func newStream(ws *xws.Conn, raw net.Conn, readLimit int) *stream {
	ws.PayloadType = xws.BinaryFrame
	if readLimit <= 0 {
		readLimit = xws.DefaultMaxPayloadBytes
	}
	return &stream{ws: ws, raw: raw, codec: frames(), done: make(chan struct{}), readLimit: readLimit}
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
		n, err := s.frame.Read(b)
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
		if f.Len() > s.readLimit {
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

func (s *stream) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := s.codec.Send(s.ws, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite sends the half-close message.
func (s *stream) CloseWrite() error {
	if s.fin.Swap(true) {
		return nil
	}
	return s.codec.Send(s.ws, finMessage)
}

// finTimeout bounds the FIN message Close sends: a peer that stopped
// reading does not hold Close.
const finTimeout = time.Second

// Close sends FIN, if CloseWrite did not, and closes the connection.
func (s *stream) Close() error {
	return s.end(func() {
		if !s.fin.Swap(true) {
			s.raw.SetWriteDeadline(time.Now().Add(finTimeout))
			s.codec.Send(s.ws, finMessage)
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
