package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// addMany adds n public mappings with clients concurrent callers and
// returns the adds per second and the failures.
func addMany(ctx context.Context, d *daemon, n, clients int) (float64, int64, error) {
	var next, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := d.addPublic(cctx, "", 60)
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	var err error
	if e, ok := firstErr.Load().(error); ok {
		err = e
	}
	ok := int64(n) - failed.Load()
	return float64(ok) / el.Seconds(), failed.Load(), err
}

// measureControl measures mapping adds per second over the REST API and
// the daemon's start time with cfg.StartMaps stored mappings. Restarts
// follow a SIGKILL, so the count after restart also proves the adds were
// durable when acknowledged.
func measureControl(ctx context.Context, cl *cleanup, log *slog.Logger, cfg benchConfig, tmp string, res *results) {
	dir := filepath.Join(tmp, "control")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.ctlNote = append(res.ctlNote, err.Error())
		return
	}
	d, err := newDaemon(cl, log, daemonOptions{Bin: cfg.Bin, Dir: dir, Dev: true, PluginDir: cfg.PluginDir, Ports: controlPorts})
	if err == nil {
		_, err = d.start(ctx, 0, 20*time.Second)
	}
	if err != nil {
		res.ctlNote = append(res.ctlNote, "control plane skipped: daemon: "+err.Error())
		return
	}
	log.Info("control plane: adds")
	total := 0
	for range cfg.Repeats {
		for _, c := range []struct {
			key     string
			n, conc int
		}{{"adds/s 1", cfg.AddsOne, 1}, {"adds/s 8", cfg.AddsEight, 8}} {
			rate, failed, err := addMany(ctx, d, c.n, c.conc)
			total += c.n - int(failed)
			res.control[c.key] = append(res.control[c.key], rate)
			if err != nil {
				res.ctlNote = append(res.ctlNote, fmt.Sprintf("%s: %d failures, first: %v", c.key, failed, err))
			}
		}
	}
	if fill := cfg.StartMaps - total; fill > 0 {
		log.Info("control plane: storing mappings", "n", fill)
		_, failed, err := addMany(ctx, d, fill, 8)
		total += fill - int(failed)
		if err != nil {
			res.ctlNote = append(res.ctlNote, fmt.Sprintf("filling to %d mappings: %d failures, first: %v", cfg.StartMaps, failed, err))
		}
	}
	res.control["stored"] = []float64{float64(total)}
	if n, err := d.statusAll(ctx); err != nil || n != total {
		res.ctlNote = append(res.ctlNote, fmt.Sprintf("status before restart: %d mappings (acknowledged %d), err %v", n, total, err))
	}
	for range cfg.Repeats {
		d.kill()
		log.Info("control plane: restart", "mappings", total)
		el, err := d.start(ctx, total, 60*time.Second)
		if err != nil {
			res.ctlNote = append(res.ctlNote, "restart: "+err.Error())
			res.control["start s"] = append(res.control["start s"], math.NaN())
			continue
		}
		res.control["start s"] = append(res.control["start s"], el.Seconds())
		if kb, err := rssKB([]int{d.proc.pid()}); err == nil {
			res.control["start rss MB"] = append(res.control["start rss MB"], float64(kb)/1024)
		}
	}
	d.proc.stop(log)
}
