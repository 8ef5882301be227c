package websocket

import (
	"io"
	"net"
	"sync"
	"time"

	xws "golang.org/x/net/websocket"
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
type stream struct {
	ws    *xws.Conn
	raw   net.Conn // the connection under the WebSocket, for addresses and deadlines
	codec xws.Codec

	rmu  sync.Mutex
	rbuf []byte
	eof  bool

	once sync.Once
	done chan struct{} // closed by Close
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
func (s *stream) CloseWrite() error { return s.codec.Send(s.ws, finMessage) }

func (s *stream) Close() error {
	var err error
	s.once.Do(func() {
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

var _ net.Conn = (*stream)(nil)
