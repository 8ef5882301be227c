package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// soakConfig is everything one soak run needs.
type soakConfig struct {
	Bin        string   // iofog-connector binary
	PluginDir  string   // transport plugins for daemon and agents ("" none)
	Transports []string // nil: those `iofog-connector plugins` lists
	Out        string   // SOAK.md path
	Command    string   // the command line that made the report
	RepoDir    string   // for git

	Duration    time.Duration // traffic and churn
	Interval    time.Duration // between samples
	Warmup      float64       // fraction of Duration left out of the fits
	Concurrency int           // public clients at once per transport
	MaxSize     int           // largest transfer, bytes
	Lanes       int           // churned mappings per transport
	KillMin     time.Duration // churned agents are SIGKILLed after a
	KillMax     time.Duration // random delay in [KillMin, KillMax)
	LifeMin     time.Duration // churned mappings are removed after a
	LifeMax     time.Duration // random lifetime in [LifeMin, LifeMax)
	Threshold   time.Duration // the mappings' heartbeat threshold
	XferTimeout time.Duration // one client transfer, end to end
	TLS         bool          // dev=false: TLS agent links and public ports
	Seed        uint64
}

// cmdSoak parses the soak flags and runs it.
func cmdSoak(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	bin := fs.String("bin", "bin/iofog-connector", "iofog-connector binary")
	pluginDir := fs.String("plugin-dir", "", "transport plugin directory for daemon and agents")
	transports := fs.String("transports", "", "comma-separated transports (default: those `iofog-connector plugins` lists)")
	out := fs.String("out", "SOAK.md", "report path")
	dur := fs.Duration("duration", 30*time.Minute, "how long traffic and churn run")
	interval := fs.Duration("interval", 10*time.Second, "sampling interval")
	warmup := fs.Float64("warmup", 0.2, "fraction of the run left out of the growth fits")
	conc := fs.Int("concurrency", 8, "public clients at once per transport")
	maxSize := fs.Int("max-size", 1<<20, "largest transfer in bytes (sizes are uniform in 1..max-size)")
	lanes := fs.Int("lanes", 2, "churned mappings per transport (besides one stable mapping whose agent is never killed)")
	killMin := fs.Duration("kill-min", 5*time.Second, "shortest delay before a churned agent is SIGKILLed")
	killMax := fs.Duration("kill-max", 30*time.Second, "longest delay before a churned agent is SIGKILLed")
	lifeMin := fs.Duration("life-min", 60*time.Second, "shortest lifetime of a churned mapping")
	lifeMax := fs.Duration("life-max", 180*time.Second, "longest lifetime of a churned mapping")
	threshold := fs.Duration("threshold", 15*time.Second, "heartbeat threshold of the mappings (a killed agent's links are dropped after it)")
	xfer := fs.Duration("xfer-timeout", 60*time.Second, "bound on one client transfer")
	useTLS := fs.Bool("tls", false, "run the daemon with TLS (dev=false): agents verify it with --ca, public clients speak TLS")
	seed := fs.Uint64("seed", 0, "random seed (0: from the clock)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := soakConfig{
		Out: *out, Duration: *dur, Interval: *interval, Warmup: *warmup, Concurrency: *conc, MaxSize: *maxSize,
		Lanes: *lanes, KillMin: *killMin, KillMax: *killMax, LifeMin: *lifeMin, LifeMax: *lifeMax,
		Threshold: *threshold, XferTimeout: *xfer, TLS: *useTLS, Seed: *seed,
		Command: "make soak SOAK_DURATION=" + dur.String() + "   # = connector-bench soak " + strings.Join(args, " "),
	}
	switch {
	case cfg.Duration < 10*time.Second:
		return fmt.Errorf("connector-bench: soak: -duration %s is below 10s", cfg.Duration)
	case cfg.Interval <= 0 || cfg.Interval > cfg.Duration:
		return fmt.Errorf("connector-bench: soak: -interval %s must be positive and within -duration", cfg.Interval)
	case cfg.Warmup < 0 || cfg.Warmup > 0.9:
		return fmt.Errorf("connector-bench: soak: -warmup %.2f is outside 0..0.9", cfg.Warmup)
	case cfg.Concurrency < 1 || cfg.Concurrency > 256:
		return fmt.Errorf("connector-bench: soak: -concurrency %d is outside 1..256", cfg.Concurrency)
	case cfg.MaxSize < 1 || cfg.MaxSize > 64<<20:
		return fmt.Errorf("connector-bench: soak: -max-size %d is outside 1..64 MiB", cfg.MaxSize)
	case cfg.Lanes < 0 || cfg.Lanes > 8:
		return fmt.Errorf("connector-bench: soak: -lanes %d is outside 0..8", cfg.Lanes)
	case cfg.KillMin <= 0 || cfg.KillMax <= cfg.KillMin || cfg.LifeMin <= 0 || cfg.LifeMax <= cfg.LifeMin:
		return errors.New("connector-bench: soak: need 0 < -kill-min < -kill-max and 0 < -life-min < -life-max")
	case cfg.Threshold < time.Second || cfg.XferTimeout < time.Second:
		return errors.New("connector-bench: soak: -threshold and -xfer-timeout must be at least 1s")
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	var err error
	if cfg.Bin, err = filepath.Abs(*bin); err != nil {
		return err
	}
	if *pluginDir != "" {
		if cfg.PluginDir, err = filepath.Abs(*pluginDir); err != nil {
			return err
		}
	}
	if *transports != "" {
		cfg.Transports = strings.Split(*transports, ",")
	}
	cfg.RepoDir, _ = os.Getwd()
	return runSoak(ctx, log, cfg)
}

// xferResult classifies one public client's transfer.
type xferResult int

const (
	xferOK          xferResult = iota // every byte came back, in order
	xferInterrupted                   // some bytes came back, then the connection ended
	xferNoLink                        // closed before any byte came back (no agent link, mapping gone)
	xferDialFailed                    // could not connect (or TLS handshake failed)
	xferStalled                       // no end within the transfer timeout
	xferByteError                     // a byte came back that was not the one sent
	xferAborted                       // the soak ended during the transfer: not counted
)

// soakTransfer connects with dial, sends data while reading the echo, and
// compares every byte that comes back with the byte sent at that offset.
// It returns the classification, the bytes written, the bytes verified and,
// for a byte error, what differed.
func soakTransfer(ctx context.Context, dial dialFunc, data []byte, timeout time.Duration) (res xferResult, up, down int64, detail string) {
	dctx, cancel := context.WithTimeout(ctx, min(timeout, 10*time.Second))
	c, err := dial(dctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return xferAborted, 0, 0, ""
		}
		return xferDialFailed, 0, 0, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var written atomic.Int64
	werr := make(chan error, 1)
	go func() {
		const chunk = 64 << 10
		for off := 0; off < len(data); off += chunk {
			n, err := c.Write(data[off:min(off+chunk, len(data))])
			written.Add(int64(n))
			if err != nil {
				werr <- err
				return
			}
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			werr <- cw.CloseWrite()
			return
		}
		werr <- nil
	}()

	buf := make([]byte, 64<<10)
	off := 0
	var rerr error
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if off+n > len(data) {
				detail = fmt.Sprintf("%d bytes came back, %d were sent", off+n, len(data))
				res = xferByteError
				break
			}
			if !bytes.Equal(buf[:n], data[off:off+n]) {
				i := 0
				for i < n && buf[i] == data[off+i] {
					i++
				}
				detail = fmt.Sprintf("byte %d of %d differs", off+i, len(data))
				res = xferByteError
				break
			}
			off += n
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
	}
	c.Close() // unblocks the writer
	wErr := <-werr
	up, down = written.Load(), int64(off)
	switch {
	case res == xferByteError:
		return res, up, down, detail
	case off == len(data) && wErr == nil:
		return xferOK, up, down, ""
	case ctx.Err() != nil:
		return xferAborted, up, down, ""
	case errors.Is(rerr, os.ErrDeadlineExceeded) || errors.Is(wErr, os.ErrDeadlineExceeded):
		return xferStalled, up, down, fmt.Sprintf("%d of %d bytes back after %s", off, len(data), timeout)
	case off == 0:
		return xferNoLink, up, down, ""
	}
	return xferInterrupted, up, down, ""
}

// soakCounters are one transport's totals.
type soakCounters struct {
	attempts, ok, interrupted, noLink, dialFailed, stalled, byteErrors atomic.Int64
	bytesUp, bytesDown                                                 atomic.Int64
	kills, restarts, orphans, startFailed, exited                      atomic.Int64
	added, removed, addFailed, removeFailed                            atomic.Int64

	mu        sync.Mutex
	firstErr  map[xferResult]string // first detail per failure kind
	inFlight  atomic.Int64
	agentLive atomic.Int64
}

func (c *soakCounters) record(res xferResult, up, down int64, detail string) {
	if res == xferAborted {
		return
	}
	c.attempts.Add(1)
	c.bytesUp.Add(up)
	c.bytesDown.Add(down)
	switch res {
	case xferOK:
		c.ok.Add(1)
	case xferInterrupted:
		c.interrupted.Add(1)
	case xferNoLink:
		c.noLink.Add(1)
	case xferDialFailed:
		c.dialFailed.Add(1)
	case xferStalled:
		c.stalled.Add(1)
	case xferByteError:
		c.byteErrors.Add(1)
	}
	if detail != "" {
		c.mu.Lock()
		if c.firstErr == nil {
			c.firstErr = map[xferResult]string{}
		}
		if _, ok := c.firstErr[res]; !ok {
			c.firstErr[res] = detail
		}
		c.mu.Unlock()
	}
}

// soakLane is one mapping of a transport and the agent serving it.
type soakLane struct {
	tr     string
	stable bool // its agent is never killed, its mapping never removed

	mu    sync.Mutex
	m     mapping
	agent *child
	up    bool
}

func (l *soakLane) set(m mapping, a *child, up bool) {
	l.mu.Lock()
	l.m, l.agent, l.up = m, a, up
	l.mu.Unlock()
}

func (l *soakLane) get() (mapping, *child, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m, l.agent, l.up
}

// soakRun is the state of one soak.
type soakRun struct {
	cfg   soakConfig
	log   *slog.Logger
	cl    *cleanup
	d     *daemon
	lanes map[string][]*soakLane
	count map[string]*soakCounters
	trs   []string

	mu       sync.Mutex
	samples  []soakSample
	failures []string // fatal conditions (the daemon died...)
}

func (r *soakRun) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.log.Error("soak: " + msg)
	r.mu.Lock()
	r.failures = append(r.failures, msg)
	r.mu.Unlock()
}

// runSoak starts the daemon, the lanes, the clients and the sampler,
// stops them all after cfg.Duration (or on ctx), and writes the report.
func runSoak(ctx context.Context, log *slog.Logger, cfg soakConfig) error {
	started := time.Now()
	cl := &cleanup{}
	defer cl.run()
	limit, err := raiseNofile()
	if err != nil {
		return err
	}
	// The commit and tree state are read now, when the binaries under test
	// are the tree's: the tree may move on during a long run.
	env := collectEnv(ctx, benchConfig{RepoDir: cfg.RepoDir}, limit)
	tmp, err := os.MkdirTemp("", "connector-soak-")
	if err != nil {
		return err
	}
	cl.push(func() { os.RemoveAll(tmp) })

	r := &soakRun{cfg: cfg, log: log, cl: cl, lanes: map[string][]*soakLane{}, count: map[string]*soakCounters{}}
	trs, skipped := cfg.Transports, map[string]string{}
	if trs == nil {
		trs, skipped = pickTransports(ctx, benchConfig{Bin: cfg.Bin, PluginDir: cfg.PluginDir})
	}
	r.trs = trs
	echo, err := soakEcho(cl)
	if err != nil {
		return err
	}
	d, err := newDaemon(cl, log, daemonOptions{Bin: cfg.Bin, Dir: filepath.Join(tmp, "daemon"), Dev: !cfg.TLS,
		PluginDir: cfg.PluginDir, Ports: "20000-20499"})
	if err != nil {
		return err
	}
	if _, err := d.start(ctx, -1, 30*time.Second); err != nil {
		return err
	}
	r.d = d
	log.Info("soak: daemon up", "pid", d.proc.pid(), "transports", strings.Join(trs, ","), "duration", cfg.Duration, "tls", cfg.TLS)

	runCtx, stopRun := context.WithTimeout(ctx, cfg.Duration)
	defer stopRun()
	for _, tr := range trs {
		r.count[tr] = &soakCounters{}
		for j := 0; j <= cfg.Lanes; j++ {
			r.lanes[tr] = append(r.lanes[tr], &soakLane{tr: tr, stable: j == 0})
		}
	}
	r.sample(started) // t=0: the idle daemon, no mapping yet
	var lanesWG, clientsWG sync.WaitGroup
	for i, tr := range trs {
		for j, l := range r.lanes[tr] {
			rng := mrand.New(mrand.NewPCG(cfg.Seed, uint64(i*100+j)))
			lanesWG.Add(1)
			go func() {
				defer lanesWG.Done()
				r.runLane(runCtx, l, echo, rng)
			}()
		}
		for k := range cfg.Concurrency {
			seed := [32]byte{}
			copy(seed[:], fmt.Sprintf("%d/%d/%d", cfg.Seed, i, k))
			rng := mrand.New(mrand.NewChaCha8(seed))
			clientsWG.Add(1)
			go func() {
				defer clientsWG.Done()
				r.runClient(runCtx, tr, rng)
			}()
		}
	}

	tick := time.NewTicker(cfg.Interval)
	watch := time.NewTicker(time.Second)
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-watch.C:
			if !d.proc.alive() {
				r.fail("the daemon exited during the soak: %v; last output:\n%s", d.proc.err, tail(d.proc.out.String(), 2000))
				stopRun()
			}
			r.checkStable()
		case <-tick.C:
			if runCtx.Err() != nil {
				break loop // the lanes are already stopping
			}
			s := r.sample(started)
			log.Info("soak: sample", "t", s.T.Round(time.Second), "daemon_fds", s.DaemonFDs, "threads", s.DaemonThreads,
				"rss_mb", s.DaemonRSSKB/1024, "goroutines", s.Goroutines, "links", s.Links, "public", s.PublicConns,
				"conns_ok", s.ConnsOK, "byte_errors", s.ByteErrors)
		}
	}
	tick.Stop()
	watch.Stop()
	interrupted := ctx.Err() != nil
	ran := time.Since(started)
	log.Info("soak: stopping clients and lanes")
	if !soakWait(&clientsWG, cfg.XferTimeout+15*time.Second) {
		r.fail("public clients did not stop within %s", cfg.XferTimeout+15*time.Second)
	}
	if !soakWait(&lanesWG, 60*time.Second) {
		r.fail("lanes did not stop within 60s")
	}
	quiet := r.quiesce(started)
	rep := soakReport{cfg: cfg, started: started, ran: ran, interrupted: interrupted, transports: trs, skipped: skipped,
		nofile: limit, env: env,
		samples: r.samples, quiesced: quiet, failures: r.failures, counts: r.count, lanes: cfg.Lanes}
	md := rep.render()
	if err := os.WriteFile(cfg.Out, []byte(md), 0o644); err != nil {
		return err
	}
	log.Info("soak: report written", "path", cfg.Out)
	var byteErrors int64
	for _, c := range r.count {
		byteErrors += c.byteErrors.Load()
	}
	switch {
	case byteErrors > 0:
		return fmt.Errorf("connector-bench: soak: %d byte errors (see %s)", byteErrors, cfg.Out)
	case len(r.failures) > 0:
		return fmt.Errorf("connector-bench: soak: %s (see %s)", r.failures[0], cfg.Out)
	case interrupted:
		return fmt.Errorf("connector-bench: soak: interrupted after %s (partial report in %s)", ran.Round(time.Second), cfg.Out)
	}
	return nil
}

// soakWait waits for wg up to within.
func soakWait(wg *sync.WaitGroup, within time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(within):
		return false
	}
}

// soakSleep sleeps d or until ctx is done; it reports whether it slept.
func soakSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// between returns a random duration in [lo, hi).
func between(rng *mrand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// runLane keeps one mapping of l.tr served until ctx is done. A stable
// lane adds its mapping and starts its agent once; a churned lane adds a
// mapping, SIGKILLs and restarts its agent at random, removes the mapping
// after a random lifetime, and starts over. Every mapping is removed and
// every agent stopped before it returns.
func (r *soakRun) runLane(ctx context.Context, l *soakLane, echo string, rng *mrand.Rand) {
	c := r.count[l.tr]
	for ctx.Err() == nil {
		m, err := r.addMapping(ctx, l.tr)
		if err != nil {
			if ctx.Err() == nil {
				c.addFailed.Add(1)
				r.log.Warn("soak: mapping add failed", "transport", l.tr, "err", err)
				soakSleep(ctx, 2*time.Second)
			}
			continue
		}
		c.added.Add(1)
		agent := r.startAgent(ctx, l.tr, m, echo)
		l.set(m, agent, true)
		if l.stable {
			<-ctx.Done()
		} else {
			end := time.Now().Add(between(rng, r.cfg.LifeMin, r.cfg.LifeMax))
			for ctx.Err() == nil {
				wait := between(rng, r.cfg.KillMin, r.cfg.KillMax)
				if time.Now().Add(wait).After(end) {
					soakSleep(ctx, time.Until(end))
					break
				}
				if !soakSleep(ctx, wait) {
					break
				}
				if agent != nil {
					r.kill9(l.tr, agent)
					c.kills.Add(1)
				}
				if !soakSleep(ctx, between(rng, time.Millisecond, 2*time.Second)) {
					break
				}
				agent = r.startAgent(ctx, l.tr, m, echo)
				if agent != nil {
					c.restarts.Add(1)
				}
				l.set(m, agent, true)
			}
		}
		l.set(m, agent, false)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		err = r.d.post(rctx, "/api/v2/mapping/remove", url.Values{"mappingid": {m.ID}}, &map[string]any{})
		cancel()
		if err != nil {
			c.removeFailed.Add(1)
			r.log.Warn("soak: mapping remove failed", "transport", l.tr, "id", m.ID, "err", err)
		} else {
			c.removed.Add(1)
		}
		if agent != nil {
			r.stopAgent(l.tr, agent)
		}
	}
}

// checkStable fails the soak once for each stable agent that exited.
func (r *soakRun) checkStable() {
	for _, tr := range r.trs {
		for _, l := range r.lanes[tr] {
			if _, a, up := l.get(); l.stable && up && a != nil && !a.alive() {
				r.fail("the stable %s agent exited by itself: %v; last output:\n%s", tr, a.err, tail(a.out.String(), 1000))
				l.set(mapping{}, nil, false)
			}
		}
	}
}

// addMapping adds a public mapping on tr with the soak's threshold.
func (r *soakRun) addMapping(ctx context.Context, tr string) (mapping, error) {
	body, _ := json.Marshal(map[string]any{"type": "public", "maxconnections": 60,
		"heartbeatabsencethreshold": r.cfg.Threshold.Milliseconds(), "transport": tr})
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var m mapping
	if err := r.d.post(actx, "/api/v2/mapping/add", url.Values{"mapping": {string(body)}}, &m); err != nil {
		return m, err
	}
	if m.Error != "" || m.Port1 == 0 || m.Port2 == 0 {
		return m, fmt.Errorf("%w: mapping/add: %+v", errAPI, m)
	}
	return m, nil
}

// startAgent starts the agent of m (nil when it could not start).
func (r *soakRun) startAgent(ctx context.Context, tr string, m mapping, echo string) *child {
	a, err := r.d.startAgent(ctx, m, echo, agentOptions{Bin: r.cfg.Bin, Transport: tr, PluginDir: r.cfg.PluginDir})
	if err != nil {
		r.count[tr].startFailed.Add(1)
		r.log.Warn("soak: agent start failed", "transport", tr, "err", err)
		return nil
	}
	r.count[tr].agentLive.Add(1)
	return a
}

// kill9 SIGKILLs an agent by PID and waits for it; transport plugin
// processes it started that outlive it for 3 s are counted as orphans and
// killed by PID.
func (r *soakRun) kill9(tr string, a *child) {
	kids := withDescendants([]int{a.pid()})[1:]
	if !a.alive() {
		r.count[tr].exited.Add(1)
		r.log.Warn("soak: an agent exited by itself", "transport", tr, "err", a.err, "output", tail(a.out.String(), 1000))
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		r.fail("agent %d (%s) survived SIGKILL for 10s", a.pid(), tr)
	}
	r.count[tr].agentLive.Add(-1)
	r.reapOrphans(tr, kids)
}

// stopAgent stops an agent with SIGTERM (then SIGKILL after 5 s), and
// reaps plugin processes it left behind.
func (r *soakRun) stopAgent(tr string, a *child) {
	kids := withDescendants([]int{a.pid()})[1:]
	a.stop(r.log)
	r.count[tr].agentLive.Add(-1)
	r.reapOrphans(tr, kids)
}

func (r *soakRun) reapOrphans(tr string, pids []int) {
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range pids {
		for soakAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if soakAlive(pid) {
			r.count[tr].orphans.Add(1)
			r.log.Warn("soak: a plugin process outlived its agent; killing it", "transport", tr, "pid", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// soakAlive reports whether pid runs (a zombie does not count).
func soakAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// runClient is one public client of transport tr: it picks a live lane,
// moves a random transfer through it and records the outcome, until ctx
// is done.
func (r *soakRun) runClient(ctx context.Context, tr string, rng *mrand.Rand) {
	c := r.count[tr]
	data := make([]byte, r.cfg.MaxSize)
	var tlsCfg = r.d.tlsCfg
	for ctx.Err() == nil {
		var up []*soakLane
		for _, l := range r.lanes[tr] {
			if _, _, ok := l.get(); ok {
				up = append(up, l)
			}
		}
		if len(up) == 0 {
			soakSleep(ctx, 200*time.Millisecond)
			continue
		}
		m, _, _ := up[rng.IntN(len(up))].get()
		n := 1 + rng.IntN(r.cfg.MaxSize)
		for i := 0; i < n; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < n; j++ {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		c.inFlight.Add(1)
		res, u, dn, detail := soakTransfer(ctx, newDialer(publicAddr(m), tlsCfg), data[:n], r.cfg.XferTimeout)
		c.inFlight.Add(-1)
		c.record(res, u, dn, detail)
		if res == xferByteError {
			r.log.Error("soak: BYTE ERROR", "transport", tr, "mapping", m.ID, "detail", detail)
		}
		if res != xferOK {
			soakSleep(ctx, between(rng, 50*time.Millisecond, 300*time.Millisecond))
		}
	}
}

// soakEcho serves an echo on loopback (in this process): it copies back
// what it reads and half-closes at EOF.
func soakEcho(cl *cleanup) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	cl.push(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Minute))
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// soakSample is one sampling instant. Counts are -1 when not available.
type soakSample struct {
	T             time.Duration
	DaemonFDs     int
	DaemonThreads int
	DaemonRSSKB   int64
	Goroutines    int // -1 when the daemon does not report them
	Links         int
	PublicConns   int
	PluginFDs     int   // the daemon's transport plugin processes
	PluginRSSKB   int64 // idem
	StableFDs     int   // the stable agents (and their plugins), summed
	StableThreads int
	StableRSSKB   int64
	Agents        int // agent processes running
	InFlight      int64
	ConnsOK       int64
	ByteErrors    int64
	FDKinds       string // the daemon's descriptors by kind (first and quiesced samples only)
}

// sample takes one soakSample and keeps it.
func (r *soakRun) sample(started time.Time) soakSample {
	s := soakSample{T: time.Since(started), Goroutines: -1, Links: -1, PublicConns: -1}
	pid := r.d.proc.pid()
	s.DaemonFDs, _, _ = fdCountOne(pid)
	s.DaemonThreads, s.DaemonRSSKB = procThreadsRSS(pid)
	if len(r.samples) == 0 {
		s.FDKinds = fdKinds(pid)
	}
	if plugins := withDescendants([]int{pid})[1:]; len(plugins) > 0 {
		for _, p := range plugins {
			n, _, _ := fdCountOne(p)
			_, rss := procThreadsRSS(p)
			s.PluginFDs += n
			s.PluginRSSKB += rss
		}
	}
	if st, err := controlStatus(r.d.dataDir); err == nil {
		s.Goroutines, s.Links, s.PublicConns = st.Goroutines, st.AgentLinks, st.PublicConnections
	}
	for _, tr := range r.trs {
		c := r.count[tr]
		s.InFlight += c.inFlight.Load()
		s.ConnsOK += c.ok.Load()
		s.ByteErrors += c.byteErrors.Load()
		s.Agents += int(c.agentLive.Load())
		for _, l := range r.lanes[tr] {
			if !l.stable {
				continue
			}
			if _, a, _ := l.get(); a != nil && a.alive() {
				for _, p := range withDescendants([]int{a.pid()}) {
					n, _, _ := fdCountOne(p)
					th, rss := procThreadsRSS(p)
					s.StableFDs += n
					s.StableThreads += th
					s.StableRSSKB += rss
				}
			}
		}
	}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
	return s
}

// quiesce waits up to 30 s, once traffic and lanes have stopped, for the
// daemon to report no public connection and no agent link and for its
// descriptor count to settle, and samples it then.
func (r *soakRun) quiesce(started time.Time) soakSample {
	// The soak's own idle API connections are daemon descriptors too.
	r.d.client.CloseIdleConnections()
	// Connections end asynchronously: wait for no link and no public
	// connection, then for the descriptor count to hold still for 2 s.
	deadline := time.Now().Add(30 * time.Second)
	last, still := -1, 0
	for time.Now().Before(deadline) && r.d.proc.alive() && still < 4 {
		fds, _, _ := fdCountOne(r.d.proc.pid()) // before the status call's own connection
		st, err := controlStatus(r.d.dataDir)
		switch {
		case err != nil || st.PublicConnections != 0 || st.AgentLinks != 0 || fds != last:
			still = 0
		default:
			still++
		}
		last = fds
		time.Sleep(500 * time.Millisecond)
	}
	s := soakSample{T: time.Since(started), Goroutines: -1, Links: -1, PublicConns: -1}
	if !r.d.proc.alive() {
		return s
	}
	pid := r.d.proc.pid()
	s.DaemonFDs, _, _ = fdCountOne(pid)
	s.DaemonThreads, s.DaemonRSSKB = procThreadsRSS(pid)
	s.FDKinds = fdKinds(pid)
	if st, err := controlStatus(r.d.dataDir); err == nil {
		s.Goroutines, s.Links, s.PublicConns = st.Goroutines, st.AgentLinks, st.PublicConnections
	}
	return s
}

// fdKinds summarises a process's descriptors by what they point to:
// "socket 12, pipe 4, anon_inode 3, file 2".
func fdKinds(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	counts := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		kind := "file"
		if k, _, ok := strings.Cut(target, ":"); ok && !strings.HasPrefix(target, "/") {
			kind = k
		}
		counts[kind]++
	}
	var parts []string
	for _, k := range []string{"socket", "pipe", "anon_inode", "file"} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
			delete(counts, k)
		}
	}
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	return strings.Join(parts, ", ")
}

// fdCountOne counts one process's descriptors (-1 when unreadable).
func fdCountOne(pid int) (int, int, error) {
	n, p, err := fdCount([]int{pid})
	if err != nil {
		return -1, -1, err
	}
	return n, p, nil
}

// procThreadsRSS reads Threads and VmRSS (KiB) of /proc/PID/status; -1
// when unreadable.
func procThreadsRSS(pid int) (threads int, rssKB int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1, -1
	}
	threads, rssKB = -1, -1
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "Threads":
			threads, _ = strconv.Atoi(f[0])
		case "VmRSS":
			rssKB, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return threads, rssKB
}

// soakStatus is what the soak reads from the daemon's control socket.
// Goroutines is -1 when the daemon does not report it.
type soakStatus struct {
	AgentLinks        int `json:"agentLinks"`
	PublicConnections int `json:"publicConnections"`
	Goroutines        int `json:"goroutines"`
}

// controlStatus asks the daemon's control socket (a unix socket in its
// data dir) for its state.
func controlStatus(dataDir string) (soakStatus, error) {
	st := soakStatus{Goroutines: -1}
	path := filepath.Join(dataDir, "iofog-connector.sock")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, "unix", path)
		}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://control/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("control status: %s", resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&st)
	return st, err
}
