package plugins

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestSlogWriter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("plugin", "iofog-transport-x")
	w := &slogWriter{log: log}
	// One hclog JSON line split across writes, then a plain line.
	line := `{"@level":"warn","@message":"link dropped","@module":"plugin.iofog-transport-x","@timestamp":"2026-01-02T03:04:05.000000Z","mapping_id":"m1"}` + "\n"
	w.Write([]byte(line[:20]))
	w.Write([]byte(line[20:] + "not json\n"))
	got := buf.String()
	for _, want := range []string{`level=WARN msg="link dropped" plugin=iofog-transport-x mapping_id=m1`, `level=INFO msg="not json" plugin=iofog-transport-x`} {
		if !strings.Contains(got, want) {
			t.Errorf("logs lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "@module") || strings.Contains(got, "@timestamp") {
		t.Errorf("hclog's own keys leaked into the record:\n%s", got)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 2}
	tl.Write([]byte("one\ntwo\nthr"))
	tl.Write([]byte("ee\npartial"))
	if got, want := tl.String(), "two\nthree\npartial"; got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
}
