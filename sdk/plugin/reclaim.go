package plugin

import (
	"context"
	"runtime/metrics"
	"time"
)

// Memory after a burst. A plugin process relays bursts of traffic and
// then sits idle for long stretches; the Go runtime keeps the heap a
// burst grew (and the buffers its pools hold) and hands it back to the
// kernel only over minutes. The plugin watches its allocation rate and,
// once a burst of at least reclaimBurst bytes is followed by a quiet
// reclaimCheck (under reclaimQuiet bytes allocated), returns what it can
// at once (debug.FreeOSMemory: a collection, then every free page
// released). It does so at most once per burst, never while busy.
const (
	reclaimCheck = 100 * time.Millisecond
	reclaimQuiet = 64 << 10
	reclaimBurst = 8 << 20
)

// reclaimWhenIdle runs until ctx is done; free is debug.FreeOSMemory
// outside tests.
func reclaimWhenIdle(ctx context.Context, free func()) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	last := read()
	freed := last
	t := time.NewTicker(reclaimCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read()
		quiet := now-last < reclaimQuiet
		last = now
		if quiet && now-freed >= reclaimBurst {
			free()
			last = read()
			freed = last
		}
	}
}
