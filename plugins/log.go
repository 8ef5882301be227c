package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogBridge returns an hclog.Logger whose lines go to log (which names
// the plugin): go-plugin logs its own events and each line of the plugin's
// stderr through it.
func hclogBridge(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Output:     &slogWriter{log: log},
		Level:      hclog.Info,
		JSONFormat: true,
	})
}

// slogWriter turns hclog JSON lines into slog records.
type slogWriter struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (w *slogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *slogWriter) line(b []byte) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		w.log.Info(string(b))
		return
	}
	msg, _ := m["@message"].(string)
	lvl, _ := m["@level"].(string)
	level := slog.LevelInfo
	switch strings.ToLower(lvl) {
	case "trace", "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	attrs := make([]slog.Attr, 0, len(m))
	for k, v := range m {
		if strings.HasPrefix(k, "@") || k == "timestamp" {
			continue
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	w.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// tail keeps the last lines written to it: the plugin's raw stderr, quoted
// in the log when the plugin dies.
type tail struct {
	mu    sync.Mutex
	lines []string
	part  []byte
	max   int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		t.part = t.part[i+1:]
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.lines, "\n")
	if len(t.part) > 0 {
		s += "\n" + string(t.part)
	}
	return s
}
