package websocket

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	xws "golang.org/x/net/websocket"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
)

// TestMask: the word-wise mask is RFC 6455's byte-wise XOR, at every
// length and alignment.
func TestMask(t *testing.T) {
	for n := range 40 {
		b := make([]byte, n)
		rand.Read(b)
		var key [4]byte
		rand.Read(key[:])
		want := bytes.Clone(b)
		for i := range want {
			want[i] ^= key[i%4]
		}
		mask(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("mask of %d bytes = %x, want %x", n, b, want)
		}
	}
}

// olderPeer serves WebSockets the way the previous release read and wrote
// them (x/net/websocket's Codec: whole frames, FIN as a text frame), and
// echoes: every binary frame back, then a ping, then "FIN" once it got
// "FIN".
func olderPeer(t *testing.T) string {
	t.Helper()
	type message struct {
		data []byte
		text bool
	}
	codec := xws.Codec{
		Marshal: func(v any) ([]byte, byte, error) {
			if s, ok := v.(string); ok {
				return []byte(s), xws.TextFrame, nil
			}
			return v.([]byte), xws.BinaryFrame, nil
		},
		Unmarshal: func(data []byte, typ byte, v any) error {
			m := v.(*message)
			m.data, m.text = data, typ == xws.TextFrame
			return nil
		},
	}
	srv := httptest.NewServer(xws.Server{Handshake: func(*xws.Config, *http.Request) error { return nil }, Handler: func(ws *xws.Conn) {
		defer ws.Close()
		for {
			var m message
			if err := codec.Receive(ws, &m); err != nil {
				return
			}
			if m.text {
				ws.PayloadType = xws.PingFrame // a ping the stream must answer and skip
				ws.Write([]byte("ping"))
				codec.Send(ws, string(m.data))
				continue
			}
			if codec.Send(ws, m.data) != nil {
				return
			}
		}
	}})
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestFramesWithOlderPeer: this release's frames (built by hand, masked on
// the client's side, large writes split) are read by the previous
// release's codec, and its frames, pings included, by this release; FIN
// crosses both ways.
func TestFramesWithOlderPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := New()
	if err := tr.Configure(ctx, mustSettings(t, `{"path":"/"}`)); err != nil {
		t.Fatal(err)
	}
	c, err := tr.dial(ctx, sdk.DialConfig{Addr: olderPeer(t), Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	data := make([]byte, 3*maxWriteFrame+123) // four frames
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(sdk.CloseWriter).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v after %d bytes", err, len(got))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo of %d bytes differs (%d bytes back)", len(data), len(got))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestServerFramesUnmasked: the server's side sends final, unmasked
// frames.
func TestServerFramesUnmasked(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := &stream{raw: a}
	go s.writeFrame(opBinary, []byte("hi"))
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hdr, []byte{0x82, 2, 'h', 'i'}) {
		t.Fatalf("server frame = %x, want 8202 6869 (final, binary, unmasked)", hdr)
	}
}

func mustSettings(t *testing.T, js string) plugin.Settings {
	t.Helper()
	s, err := plugin.ParseSettings("websocket", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
