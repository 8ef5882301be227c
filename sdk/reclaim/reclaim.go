// Package reclaim hands memory back to the kernel once a process goes
// quiet after a burst of traffic.
//
// A relay process (the connector daemon, an agent, a transport plugin)
// moves bursts of bytes and then sits idle for long stretches; the Go
// runtime keeps the heap a burst grew (and the buffers its pools hold) and
// returns it to the kernel only over minutes. [WhenIdle] watches the
// process's allocation rate and, once a burst of at least 8 MiB is
// followed by a quiet 100 ms (under 64 KiB allocated), frees what it can
// at once: a collection, then every free page released
// ([runtime/debug.FreeOSMemory]). It does so at most once per burst and
// never while the process is busy, so a steadily loaded relay never pays
// for it.
//
// This package is a kit, not part of the stable contract (see "Stability"
// in package sdk): transports and tools may use it, and any release may
// change its API; make api-check reports such changes for the release
// notes.
package reclaim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// How often the allocation rate is read, what counts as quiet per check,
// and how much must have been allocated since the last reclaim.
const (
	reclaimCheck = 100 * time.Millisecond
	reclaimQuiet = 64 << 10
	reclaimBurst = 8 << 20
)

// WhenIdle returns memory to the kernel after each burst the process
// allocated, once it is quiet, until ctx is done. Run it on its own
// goroutine, once per process.
func WhenIdle(ctx context.Context) {
	whenIdle(ctx, debug.FreeOSMemory)
}

// whenIdle is WhenIdle with the freeing step given (tests count calls).
func whenIdle(ctx context.Context, free func()) {
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
