// Package reclaim hands memory back to the kernel once a process goes
// quiet after a burst of traffic.
//
// A relay process (the connector daemon, an agent, a transport plugin)
// moves bursts of bytes and then sits idle for long stretches; the Go
// runtime keeps the heap a burst grew (and the buffers its pools hold) and
// returns it to the kernel only over minutes. [WhenIdle] watches the
// process's allocation rate and the memory the runtime holds and, once a
// burst (at least 8 MiB allocated, or the memory held grown by 8 MiB, as
// when thousands of idle connections wake at once and their goroutines'
// stacks outlive them) is followed by a quiet 100 ms (under 64 KiB
// allocated), frees what it can at once: a collection, then every free
// page released ([runtime/debug.FreeOSMemory]). It does so at most once
// per burst and never while the process is busy, so a steadily loaded
// relay never pays for it. A process that has been quiet for a second
// while holding 8 MiB more than it did after its leanest reclaim (as
// after closing thousands of connections, which allocates next to
// nothing) is checked the same way every 10 s, backing off to every 5
// minutes while the checks find nothing to free.
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

// An idle process whose memory stays reclaimBurst above the least it held
// after a reclaim is checked again (a collection, then release) once it
// has been quiet for idleQuiet, at most every idleEvery, backing off to
// idleEveryMax while a check finds nothing to free. Closing thousands of
// connections allocates almost nothing, so no burst follows it; without
// this check their memory would wait for the runtime's own collection,
// every two minutes.
const (
	idleQuiet    = time.Second
	idleEvery    = 10 * time.Second
	idleEveryMax = 5 * time.Minute
)

// WhenIdle returns memory to the kernel after each burst the process
// allocated, once it is quiet, until ctx is done. Run it on its own
// goroutine, once per process.
func WhenIdle(ctx context.Context) {
	whenIdle(ctx, debug.FreeOSMemory, idleEvery)
}

// memory reads the runtime's counters whenIdle decides on.
type memory struct {
	samples []metrics.Sample
}

func newMemory() *memory {
	return &memory{samples: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}}
}

// read returns the bytes allocated on the heap since the process started,
// and the memory the runtime has mapped and not returned to the kernel
// (heap, free pages it keeps, goroutine stacks, its own structures): what
// it holds of the process's resident memory.
func (m *memory) read() (allocs, held uint64) {
	metrics.Read(m.samples)
	v := func(i int) uint64 {
		if m.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return m.samples[i].Value.Uint64()
	}
	total, released := v(1), v(2)
	if released < total {
		held = total - released
	}
	return v(0), held
}

// whenIdle is WhenIdle with the freeing step and the idle check's first
// interval given (tests count calls and shorten the wait).
// A burst is reclaimBurst allocated on the heap since the last reclaim, or
// the memory the runtime holds grown by reclaimBurst since then: goroutine
// stacks (a thousand connections that woke at once and went idle again)
// are not heap allocations, and the runtime keeps their memory after
// they exit.
func whenIdle(ctx context.Context, free func(), every time.Duration) {
	m := newMemory()
	last, held := m.read()
	freed, heldAfter := last, held
	floor := held // the least held after a reclaim (or at start)
	quietSince, lastFree, wait := time.Now(), time.Now(), every
	t := time.NewTicker(reclaimCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, held := m.read()
		quiet := now-last < reclaimQuiet
		last = now
		if !quiet {
			quietSince = time.Now()
			continue
		}
		grown := held > heldAfter && held-heldAfter >= reclaimBurst
		idle := time.Since(quietSince) >= idleQuiet && time.Since(lastFree) >= wait &&
			held >= floor+reclaimBurst
		if now-freed < reclaimBurst && !grown && !idle {
			continue
		}
		free()
		before := held
		last, heldAfter = m.read()
		freed, lastFree = last, time.Now()
		floor = min(floor, heldAfter)
		switch {
		case !idle:
		case before < heldAfter || before-heldAfter < reclaimBurst/2:
			wait = min(2*wait, idleEveryMax) // nothing to free: back off
		default:
			wait = every
		}
	}
}
