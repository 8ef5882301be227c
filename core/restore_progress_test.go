package core

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

// TestRestoreProgress10000 restores 10,000 stored private mappings and
// checks the progress lines: the second half of the mappings is held back
// until a progress line reports exactly the first half done, then the
// summary reports all of them.
func TestRestoreProgress10000(t *testing.T) {
	const n = 10000
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	gate := make(chan struct{})
	tr := &gateTransport{gate: gate, from: n / 2}
	pool := make([]int, 2*n)
	for i := range pool {
		pool[i] = 10000 + i
	}
	stored := make([]store.Mapping, n)
	for i := range stored {
		stored[i] = store.Mapping{
			ID: fmt.Sprintf("m-%d", i), Port1: pool[2*i], Port2: pool[2*i+1], Type: TypePrivate,
			MaxConnections1: 1, MaxConnections2: 1, PasscodePort1: "p1", PasscodePort2: "p2",
		}
	}
	m, err := New(Config{
		BindHost: "127.0.0.1", Ports: ports.New(pool), Store: nopStore{},
		Transports: map[string]sdk.Transport{"gate": tr}, DefaultTransport: "gate",
		Logger: log, RestoreProgressInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- m.Restore(ctx, stored) }()

	half := fmt.Sprintf("restored %d/%d mappings", n/2, n)
	if err := waitFor(ctx, func() bool { return strings.Contains(logs.String(), half) }); err != nil {
		close(gate)
		t.Fatalf("no %q progress line: %v\n%.2000s", half, err, logs.String())
	}
	close(gate)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Restore: %.500v", err)
		}
	case <-ctx.Done():
		t.Fatal("Restore did not return")
	}
	out := logs.String()
	want := fmt.Sprintf(`msg="restored %d/%d mappings" count=%d failed=0`, n, n, n)
	if !strings.Contains(out, want) {
		t.Fatalf("no summary %q in:\n%.2000s", want, out)
	}
	progress := strings.Count(out, "done=")
	if progress < 1 {
		t.Fatalf("no progress line")
	}
	if got := len(m.List()); got != n {
		t.Fatalf("%d mappings after restore, want %d", got, n)
	}
	t.Logf("%d progress lines; summary: %s", progress, lastLine(out))
}

func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// gateTransport opens socketless endpoints; Listen for the mappings
// m-<from> and later waits for gate to close.
type gateTransport struct {
	gate chan struct{}
	from int
}

func (g *gateTransport) Name() string { return "gate" }

func (g *gateTransport) Listen(ctx context.Context, cfg sdk.EndpointConfig) (sdk.Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var i int
	if _, err := fmt.Sscanf(cfg.MappingID, "m-%d", &i); err == nil && i >= g.from {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &idleEndpoint{done: make(chan struct{})}, nil
}

func (g *gateTransport) Dial(context.Context, sdk.DialConfig) (sdk.Session, error) {
	return nil, net.ErrClosed
}

// idleEndpoint has no agent ever: Open and Accept wait for Close.
type idleEndpoint struct {
	once sync.Once
	done chan struct{}
}

func (e *idleEndpoint) wait(ctx context.Context) (net.Conn, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.done:
		return nil, sdk.ErrClosed
	}
}
func (e *idleEndpoint) Open(ctx context.Context) (net.Conn, error)   { return e.wait(ctx) }
func (e *idleEndpoint) Accept(ctx context.Context) (net.Conn, error) { return e.wait(ctx) }
func (e *idleEndpoint) Close() error                                 { e.once.Do(func() { close(e.done) }); return nil }

var _ sdk.Transport = (*gateTransport)(nil)
