package websocket_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/examples/websocket-transport/websocket"
	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

func settings(t *testing.T, js string) plugin.Settings {
	t.Helper()
	s, err := plugin.ParseSettings("websocket", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func status(t *testing.T, addr, path string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestConfigurePath: path moves the WebSocket: the endpoint answers 404
// on the default path and a session of a transport configured alike
// carries streams; one left on the default path cannot reach it.
func TestConfigurePath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := websocket.New()
	if err := tr.Configure(ctx, settings(t, `{"path":"/behind/proxy"}`)); err != nil {
		t.Fatal(err)
	}
	if got := tr.Config(); got.Path != "/behind/proxy" || got.ReadLimit != websocket.DefaultConfig().ReadLimit {
		t.Fatalf("Config() = %+v", got)
	}
	ep, addr := transporttest.Listen(t, tr, "tcp", sdk.EndpointConfig{})
	if got := status(t, addr, websocket.Path); got != http.StatusNotFound {
		t.Fatalf("GET %s = %d, want 404", websocket.Path, got)
	}
	if got := status(t, addr, "/behind/proxy"); got == http.StatusNotFound {
		t.Fatalf("GET /behind/proxy = 404, want the WebSocket's answer")
	}
	s, err := tr.Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, a := transporttest.Pair(t, ctx, ep, s)
	transporttest.Echo(t, c, a, "through /behind/proxy")

	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	if s, err := websocket.New().Dial(dctx, sdk.DialConfig{Addr: addr, Passcode: "pw"}); err == nil {
		s.Close()
		t.Fatal("a session on the default path reached an endpoint on /behind/proxy")
	}
}

// TestConfigureReadLimit: a frame over read-limit breaks the stream that
// reads it; frames within it pass.
func TestConfigureReadLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	small := websocket.New()
	if err := small.Configure(ctx, settings(t, `{"read-limit":"4096"}`)); err != nil {
		t.Fatal(err)
	}
	ep, addr := transporttest.Listen(t, small, "tcp", sdk.EndpointConfig{})
	s, err := websocket.New().Dial(ctx, sdk.DialConfig{Addr: addr, Passcode: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, a := transporttest.Pair(t, ctx, ep, s)
	transporttest.Echo(t, c, a, strings.Repeat("s", 4000))
	if _, err := a.Write(make([]byte, 8192)); err != nil { // one frame of 8 KiB
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadFull(c, make([]byte, 8192))
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading a frame over read-limit: %d bytes, %v; want the stream broken", n, err)
	}
}

// TestConfigureRefused: bad keys and values are refused naming the key,
// and leave the settings as they were.
func TestConfigureRefused(t *testing.T) {
	tr := websocket.New()
	for js, want := range map[string]string{
		`{"pth":"/x"}`:         "transports.websocket.pth: unknown key; websocket takes path, read-limit",
		`{"path":"no-slash"}`:  `transports.websocket: path "no-slash" is not an HTTP path`,
		`{"path":"/a?b"}`:      `path "/a?b" is not an HTTP path`,
		`{"read-limit":10}`:    "read-limit 10 is not between 1024",
		`{"read_limit":"big"}`: `transports.websocket.read_limit: "big" is not a whole number`,
	} {
		if err := tr.Configure(t.Context(), settings(t, js)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Configure(%s) = %v, want %q", js, err, want)
		}
	}
	if tr.Config() != websocket.DefaultConfig() {
		t.Fatalf("refused settings changed the config: %+v", tr.Config())
	}
}
