package transporttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// testLogAttrsOnce gives the endpoint and the session loggers that already
// carry what their callers add (core: mapping, side, transport; sdk/agent:
// transport, peer), runs a stream and a bad passcode, and checks that no
// logged line names an attribute twice: a transport adds only what it
// learns itself.
func testLogAttrsOnce(t *testing.T, e *env) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := e.endpointConfig()
	cfg.Logger = log.With(sdk.AttrMappingID, cfg.MappingID, sdk.AttrSide, cfg.Side, sdk.AttrTransport, e.tr.Name())
	ep, addr := e.listen(cfg)
	dcfg := e.dialConfig(addr, cfg.Passcode)
	dcfg.Logger = log.With(sdk.AttrTransport, e.tr.Name(), sdk.AttrPeer, addr)
	s := e.dial(dcfg)
	c, a := e.pair(ep, s)
	if err := exchange(c, a, "logged"); err != nil {
		t.Fatalf("stream: %v", err)
	}
	bad := e.dialConfig(addr, "not-"+cfg.Passcode)
	bad.Logger = dcfg.Logger
	if s2, err := e.tr.Dial(e.ctx(10*time.Second), bad); err == nil {
		e.track(s2)
	}
	c.Close()
	a.Close()
	s.Close()
	ep.Close()
	for line := range strings.Lines(buf.String()) {
		if k, ok := repeatedKey(line); ok {
			t.Errorf("attribute %q appears twice in %s", k, line)
		}
	}
}

// repeatedKey reports the first top-level key a JSON log line names twice.
func repeatedKey(line string) (string, bool) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		k := fmt.Sprint(tok)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", false
		}
	}
	return "", false
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
