package core

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

// BenchmarkRestore2000 reopens 2,000 stored public mappings (4,000 real
// loopback listeners) per iteration: the start-up cost of a daemon with a
// large configs.json. It is limited to 2,000 by the descriptor limit of
// shared test machines; start-up scales linearly.
func BenchmarkRestore2000(b *testing.B) {
	const n = 2000
	pool := make([]int, 0, 2*n)
	// Ports below the ephemeral range that are free right now.
	for p := 12000; len(pool) < 2*n && p < 32000; p++ {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			ln.Close()
			pool = append(pool, p)
		}
	}
	if len(pool) < 2*n {
		b.Fatalf("only %d free ports", len(pool))
	}
	stored := make([]store.Mapping, n)
	for i := range stored {
		stored[i] = store.Mapping{
			ID: fmt.Sprintf("m-%d", i), Port1: pool[2*i], Port2: pool[2*i+1],
			MaxConnections1: 60, PasscodePort1: "p", Type: TypePublic,
		}
	}
	for b.Loop() {
		m, err := New(Config{
			BindHost: "127.0.0.1", Ports: ports.New(pool), Store: nopStore{},
			Transports: map[string]sdk.Transport{"test": &listenTransport{}}, DefaultTransport: "test",
		})
		if err != nil {
			b.Fatal(err)
		}
		err = m.Restore(context.Background(), stored)
		m.Close()
		if err != nil {
			// Ports of this range taken by other processes show as down
			// mappings; report them rather than fail the benchmark.
			b.Logf("restore: some mappings down: %.200v", err)
		}
	}
}

type nopStore struct{}

func (nopStore) Add(context.Context, store.Mapping) error { return nil }
func (nopStore) Remove(context.Context, string) error     { return nil }
