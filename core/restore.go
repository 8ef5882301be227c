package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/store"
	"github.com/iofog/iofog-connector/sdk"
)

// Restore reopens stored mappings on their own ports with their own
// passcodes. A mapping that cannot be reopened (its port is taken, its
// transport is missing) is kept, shown as down and logged, so that it can
// still be removed and is retried on the next start; the returned error
// joins those failures.
//
// While it runs it logs its progress ("restored 3100/10000 mappings")
// every Config.RestoreProgressInterval, and a summary at the end.
func (m *Manager) Restore(ctx context.Context, stored []store.Mapping) error {
	var (
		mu     sync.Mutex
		errs   []error
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 16)
		done   atomic.Int64
		failed atomic.Int64
		start  = m.cfg.Now()
	)
	stopProgress := m.restoreProgress(len(stored), &done, &failed, start)
	for _, s := range stored {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := m.restoreOne(ctx, s)
			if err != nil {
				failed.Add(1)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			done.Add(1)
		}()
	}
	wg.Wait()
	stopProgress()
	m.log.Info(fmt.Sprintf("restored %d/%d mappings", len(stored)-len(errs), len(stored)),
		"count", len(stored)-len(errs), "failed", len(errs), "elapsed", m.cfg.Now().Sub(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// restoreProgress logs, every interval until the returned stop is called,
// how many of total mappings are done. Stop waits for the logger to exit.
func (m *Manager) restoreProgress(total int, done, failed *atomic.Int64, start time.Time) (stop func()) {
	every := m.cfg.RestoreProgressInterval
	if every <= 0 {
		every = time.Second
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				n := done.Load()
				m.log.Info(fmt.Sprintf("restored %d/%d mappings", n, total),
					"done", n, "total", total, "failed", failed.Load(), "elapsed", m.cfg.Now().Sub(start).Round(time.Millisecond))
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

func (m *Manager) restoreOne(ctx context.Context, s store.Mapping) error {
	mp := m.restoredMapping(s)
	lv := newLive(mp)
	name := mp.Transport
	if name == "" {
		name = m.cfg.DefaultTransport
	}
	tr := m.cfg.Transports[name]
	err := m.reserve(mp.ID, mp.Port1)
	if err == nil {
		if err = m.reserve(mp.ID, mp.Port2); err != nil {
			m.cfg.Ports.Release(mp.Port1)
		}
	}
	lv.ownsPorts = err == nil
	switch {
	case err != nil:
		// Not ours to release: the port is taken by another stored
		// mapping.
	case tr == nil:
		err = fmt.Errorf("%w: %q", ErrUnknownTransport, name)
	default:
		if err = m.openSide(ctx, lv, tr, 1, mp.Port1); err == nil {
			err = m.openSide(ctx, lv, tr, 2, mp.Port2)
		}
		if err != nil {
			m.closeLive(lv)
			lv = newLive(mp)
			lv.ownsPorts = true
		}
	}
	if err != nil {
		lv.down = err
		m.log.Error("mapping not reopened; it stays stored", sdk.AttrMappingID, mp.ID, "port1", mp.Port1, "port2", mp.Port2, "err", err)
	} else {
		m.log.Debug("mapping restored", sdk.AttrMappingID, mp.ID, "port1", mp.Port1, "port2", mp.Port2)
	}
	if rerr := m.register(lv); rerr != nil {
		m.closeLive(lv)
		return rerr
	}
	if err != nil {
		return fmt.Errorf("core: restore %s: %w", mp.ID, err)
	}
	return nil
}

// reserve takes a stored mapping's port. A port outside the pool (the
// settings changed since the mapping was made) is still reopened, since
// agents know it; it is held while the mapping lives and never handed out
// again (ports.Allocator.Reserve records it).
func (m *Manager) reserve(id string, port int) error {
	err := m.cfg.Ports.Reserve(port)
	if errors.Is(err, ports.ErrNotInPool) {
		m.log.Warn("stored mapping uses a port outside the configured pool; reopening it anyway", sdk.AttrMappingID, id, sdk.AttrPort, port)
		return nil
	}
	return err
}
