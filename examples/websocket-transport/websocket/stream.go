package websocket

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	xws "golang.org/x/net/websocket"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/streamkit"
)

// frames is the codec of a stream: binary frames carry data, the text
// frame "FIN" is a half-close (the peer reads io.EOF and may go on
// writing). WebSocket close frames cannot half-close: the protocol expects
// the peer to answer one and hang up.
func frames() xws.Codec {
	return xws.Codec{
		Marshal: func(v any) ([]byte, byte, error) {
			if s, ok := v.(string); ok {
				return []byte(s), xws.TextFrame, nil
			}
			return v.([]byte), xws.BinaryFrame, nil
		},
		Unmarshal: func(data []byte, payloadType byte, v any) error {
			m := v.(*message)
			m.data, m.text = data, payloadType == xws.TextFrame
			return nil
		},
	}
}

type message struct {
	data []byte
	text bool
}

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

	rmu  sync.Mutex
	rbuf []byte
	eof  bool

	fin  atomic.Bool // the FIN message was sent
	once sync.Once
	done chan struct{} // closed by Close and Abort
}

func newStream(ws *xws.Conn, raw net.Conn) *stream {
	ws.PayloadType = xws.BinaryFrame
	return &stream{ws: ws, raw: raw, codec: frames(), done: make(chan struct{})}
}

func (s *stream) Read(b []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for len(s.rbuf) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		var m message
		if err := s.codec.Receive(s.ws, &m); err != nil {
			if err == io.EOF {
				return 0, io.ErrUnexpectedEOF // no FIN: the peer was lost
			}
			return 0, err
		}
		if m.text {
			if string(m.data) == finMessage {
				s.eof = true
			}
			continue
		}
		s.rbuf = m.data
	}
	n := copy(b, s.rbuf)
	s.rbuf = s.rbuf[n:]
	return n, nil
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
