package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchConfig is everything one harness run needs.
type benchConfig struct {
	Quick      bool
	Repeats    int
	Bin        string   // iofog-connector binary
	PluginDir  string   // passed to daemon and agents when set
	Transports []string // nil: ask `iofog-connector plugins`
	Out        string   // BENCHMARKS.md path
	Command    string   // the command line that made the report
	RepoDir    string   // for go test -bench and git
	BulkDur    time.Duration
	RateDur    time.Duration
	PingN      int
	HoldNs     []int
	Workers    int
	Pool       int // agent --pool; 0 leaves the agent's default
	AddsOne    int // mapping adds per repeat, 1 client
	AddsEight  int // mapping adds per repeat, 8 clients
	StartMaps  int // mappings stored for the start-time test
	GoBench    bool
	// Profile samples each relay with perf during one bulk upload.
	Profile bool
	// PprofDir, when set, receives Go CPU profiles of each relay anchor's
	// daemon and agent under each load of the first repeat, and heap
	// profiles with the most connections held, each with a symbolised
	// summary (see gopprof.go).
	PprofDir string
	// OnlyControl skips every anchor (development of the control-plane
	// measurement).
	OnlyControl bool
	GoBenchArg  []string
}

// Port pools of the daemons the harness starts: all below the kernel's
// ephemeral range (32768-60999 by default). Anchor daemons get
// relayPortSlice ports each from relayPortBase; the control-plane daemon
// gets controlPorts, room for 10,000 mappings of two ports.
const (
	relayPortBase  = 10000
	relayPortSlice = 100
	controlPorts   = "11000-32767"
)

// knownTransports are the transports the project plans; those the build
// lacks are reported as skipped.
var knownTransports = []string{"tcp", "yamux", "quic", "websocket"}

// anchor is one way for clients to reach the services: direct, haproxy or
// our public pipe over one transport in one mode.
type anchor struct {
	name      string
	transport string
	tls       bool
	svc       dialFunc
	iperf     string // front address for iperf3; "" when not possible
	hop1      []int  // first hop's PIDs (haproxy or the daemon)
	hop2      []int  // second hop's PIDs (the agents)
	skip      string // non-empty: not measured, and why
	// pprof lists the relay processes serving Go's profiling endpoints
	// (with -pprof).
	pprof []pprofTarget
}

// pids returns every relay PID of the anchor, with the processes they
// started (transport plugins).
func (a *anchor) pids() []int {
	return withDescendants(append(append([]int(nil), a.hop1...), a.hop2...))
}

// hop1Pids and hop2Pids return one hop's PIDs with their descendants.
func (a *anchor) hop1Pids() []int { return withDescendants(a.hop1) }
func (a *anchor) hop2Pids() []int { return withDescendants(a.hop2) }

// results is every measured value, by anchor then metric, one per repeat.
type results struct {
	order   []string
	anchors map[string]*anchor
	m       map[string]map[string][]float64
	notes   map[string][]string
	control map[string][]float64
	ctlNote []string
	gobench string
	// profiles holds, per anchor, the perf summary of one bulk upload.
	profiles [][2]string
	env      envInfo
	started  time.Time
	elapsed  time.Duration
	// interrupted is set when the run was stopped before the end.
	interrupted bool
}

func newResults() *results {
	return &results{
		anchors: map[string]*anchor{},
		m:       map[string]map[string][]float64{},
		notes:   map[string][]string{},
		control: map[string][]float64{},
	}
}

// add records one repeat of a metric for an anchor.
func (r *results) add(anchor, metric string, v float64) {
	if r.m[anchor] == nil {
		r.m[anchor] = map[string][]float64{}
	}
	r.m[anchor][metric] = append(r.m[anchor][metric], v)
}

// note records a problem seen on an anchor, once per distinct text.
func (r *results) note(anchor, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	for _, n := range r.notes[anchor] {
		if n == s {
			return
		}
	}
	r.notes[anchor] = append(r.notes[anchor], s)
}

// get returns the summary of a metric.
func (r *results) get(anchor, metric string) summary {
	return summarize(r.m[anchor][metric])
}

// runHarness sets up every anchor, measures, and writes the report.
func runHarness(ctx context.Context, log *slog.Logger, cfg benchConfig) error {
	res := newResults()
	res.started = time.Now().UTC()
	cl := &cleanup{}
	defer cl.run()
	limit, err := raiseNofile()
	if err != nil {
		return err
	}
	res.env = collectEnv(ctx, cfg, limit)
	tmp, err := os.MkdirTemp("", "connector-bench-")
	if err != nil {
		return err
	}
	cl.push(func() { os.RemoveAll(tmp) })

	self, err := os.Executable()
	if err != nil {
		return err
	}
	_, svcAddr, err := startChildLine(ctx, cl, log, "svc", "LISTEN ", self, "svc", "--addr", "127.0.0.1:0")
	if err != nil {
		return err
	}
	iperfAddr := ""
	if _, a, err := startIperfServer(ctx, cl, log); err != nil {
		res.note("direct", "iperf3 skipped: %v", err)
	} else {
		iperfAddr = a
	}

	direct := &anchor{name: "direct", svc: newDialer(svcAddr, nil), iperf: iperfAddr}
	addAnchor(res, direct)

	maxHold := 0
	for _, n := range cfg.HoldNs {
		maxHold = max(maxHold, n)
	}
	hp := &anchor{name: "haproxy"}
	backends := []string{svcAddr}
	if iperfAddr != "" {
		backends = append(backends, iperfAddr)
	}
	hdir := filepath.Join(tmp, "haproxy")
	_ = os.MkdirAll(hdir, 0o755)
	if h, fronts, err := startHAProxy(ctx, cl, log, hdir, maxHold+200, "", backends...); err != nil {
		hp.skip = err.Error()
	} else {
		hp.name = "haproxy"
		hp.svc = newDialer(fronts[0], nil)
		if len(fronts) > 1 {
			hp.iperf = fronts[1]
		}
		hp.hop1 = []int{h.proc.pid()}
		res.env.HAProxy = h.version
	}
	addAnchor(res, hp)
	addAnchor(res, setupHAProxyTLS(ctx, cl, log, filepath.Join(tmp, "haproxy-tls"), maxHold+200, svcAddr))

	transports, skipped := pickTransports(ctx, cfg)
	for _, name := range knownTransports {
		why, ok := skipped[name]
		if !ok {
			continue
		}
		for _, mode := range []string{"dev", "tls"} {
			addAnchor(res, &anchor{name: name + " " + mode, transport: name, skip: why})
		}
	}
	for i, tr := range transports {
		for j, dev := range []bool{true, false} {
			// Each daemon gets its own slice of ports below the kernel's
			// ephemeral range, so neither they nor anyone's client sockets
			// collide.
			lo := relayPortBase + (2*i+j)*relayPortSlice
			ports := fmt.Sprintf("%d-%d", lo, lo+relayPortSlice-1)
			a := setupRelay(ctx, cl, log, cfg, tmp, tr, dev, ports, svcAddr, iperfAddr, maxHold)
			addAnchor(res, a)
		}
	}

	for rep := range cfg.Repeats {
		for _, name := range res.order {
			a := res.anchors[name]
			if a.skip != "" || ctx.Err() != nil || cfg.OnlyControl {
				continue
			}
			log.Info("measuring", "anchor", name, "repeat", rep+1)
			var prof *goProfiles
			if cfg.PprofDir != "" && rep == 0 && len(a.pprof) > 0 {
				prof = &goProfiles{dir: cfg.PprofDir, targets: a.pprof, client: &http.Client{}}
			}
			measureAnchor(ctx, log, cfg, res, a, prof)
		}
	}
	for _, name := range res.order {
		a := res.anchors[name]
		if a.skip != "" || len(a.pids()) == 0 || ctx.Err() != nil || cfg.OnlyControl || !cfg.Profile {
			continue
		}
		log.Info("profiling", "anchor", name)
		p, err := profileBulk(ctx, a, tmp, cfg.BulkDur)
		if err != nil {
			res.note(name, "profile: %v", err)
			continue
		}
		res.profiles = append(res.profiles, [2]string{name, p})
	}
	if ctx.Err() == nil {
		measureControl(ctx, cl, log, cfg, tmp, res)
	}
	if cfg.GoBench && ctx.Err() == nil {
		res.gobench = runGoBench(ctx, log, cfg)
	}
	res.elapsed = time.Since(res.started)
	// An interrupted run still writes what it measured, marked as such.
	res.interrupted = ctx.Err() != nil
	if err := os.WriteFile(cfg.Out, []byte(renderReport(cfg, res)), 0o644); err != nil {
		return err
	}
	log.Info("wrote report", "path", cfg.Out, "elapsed", res.elapsed.Round(time.Second), "interrupted", res.interrupted)
	return ctx.Err()
}

// setupHAProxyTLS starts the "haproxy tls" anchor: one haproxy hop that
// terminates TLS 1.3 on the client side with a self-signed ECDSA P-256
// certificate, as our daemon's public port does with dev off, and talks
// plain TCP to the service. It is the reference for our TLS path's public
// side. iperf3 speaks no TLS, so it has no iperf front.
func setupHAProxyTLS(ctx context.Context, cl *cleanup, log *slog.Logger, dir string, maxconn int, svcAddr string) *anchor {
	a := &anchor{name: "haproxy tls", tls: true}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		a.skip = err.Error()
		return a
	}
	clientTLS, _, err := writeServerCert(dir)
	if err != nil {
		a.skip = err.Error()
		return a
	}
	crt, err := writeHAProxyCert(dir)
	if err != nil {
		a.skip = err.Error()
		return a
	}
	h, fronts, err := startHAProxy(ctx, cl, log, dir, maxconn, crt, svcAddr)
	if err != nil {
		a.skip = err.Error()
		return a
	}
	a.svc = newDialer(fronts[0], clientTLS)
	a.hop1 = []int{h.proc.pid()}
	return a
}

func addAnchor(res *results, a *anchor) {
	res.order = append(res.order, a.name)
	res.anchors[a.name] = a
}

// pickTransports returns the transports to measure, and the known ones
// that are not available with the reason.
func pickTransports(ctx context.Context, cfg benchConfig) ([]string, map[string]string) {
	skipped := map[string]string{}
	if len(cfg.Transports) > 0 {
		for _, k := range knownTransports {
			if !contains(cfg.Transports, k) {
				skipped[k] = "not selected (-transports)"
			}
		}
		return cfg.Transports, skipped
	}
	args := []string{"plugins"}
	if cfg.PluginDir != "" {
		args = append(args, "--plugin-dir", cfg.PluginDir)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, cfg.Bin, args...).Output()
	have := parsePluginsList(string(out))
	for _, k := range knownTransports {
		if contains(have, k) {
			continue
		}
		if err != nil {
			skipped[k] = fmt.Sprintf("`iofog-connector plugins` failed: %v", err)
		} else {
			skipped[k] = "not listed by `iofog-connector plugins`"
		}
	}
	if len(have) == 0 {
		// Without a listing, still try the default transport.
		delete(skipped, "tcp")
		have = []string{"tcp"}
	}
	return have, skipped
}

// parsePluginsList returns the transport names of `iofog-connector
// plugins` output: the first column of each row after the NAME header,
// leaving out refused plugins ("?").
func parsePluginsList(out string) []string {
	var names []string
	header := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if f[0] == "NAME" {
			header = true
			continue
		}
		if header && f[0] != "?" && !contains(names, f[0]) {
			names = append(names, f[0])
		}
	}
	return names
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// setupRelay starts a daemon for one transport and mode, with one public
// mapping and agent for the service and one for iperf3.
func setupRelay(ctx context.Context, cl *cleanup, log *slog.Logger, cfg benchConfig, tmp, tr string, dev bool, ports, svcAddr, iperfAddr string, maxHold int) *anchor {
	mode := "tls"
	if dev {
		mode = "dev"
	}
	a := &anchor{name: tr + " " + mode, transport: tr, tls: !dev}
	dir := filepath.Join(tmp, tr+"-"+mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		a.skip = err.Error()
		return a
	}
	d, err := newDaemon(cl, log, daemonOptions{Bin: cfg.Bin, Dir: dir, Dev: dev, Transport: tr, PluginDir: cfg.PluginDir, Ports: ports, Pprof: cfg.PprofDir != ""})
	if err == nil {
		_, err = d.start(ctx, -1, 20*time.Second)
	}
	if err != nil {
		a.skip = "daemon: " + err.Error()
		return a
	}
	a.hop1 = []int{d.proc.pid()}
	if d.proc.pprof != "" {
		a.pprof = append(a.pprof, pprofTarget{hop: "daemon", addr: d.proc.pprof})
	}
	ao := agentOptions{Bin: cfg.Bin, Transport: tr, Pool: cfg.Pool, PluginDir: cfg.PluginDir, Pprof: cfg.PprofDir != ""}
	m, err := d.addPublic(ctx, tr, maxHold+500)
	if err != nil {
		a.skip = "mapping: " + err.Error()
		return a
	}
	ag, err := d.startAgent(ctx, m, svcAddr, ao)
	if err != nil {
		a.skip = "agent: " + err.Error()
		return a
	}
	a.hop2 = append(a.hop2, ag.pid())
	if ag.pprof != "" {
		a.pprof = append(a.pprof, pprofTarget{hop: "agent", addr: ag.pprof})
	}
	ao.Pprof = false // the iperf pipe's agent is not profiled
	var tlsCfg *tls.Config
	if !dev {
		tlsCfg = d.tlsCfg
	}
	a.svc = newDialer(publicAddr(m), tlsCfg)
	if err := warmUp(ctx, a.svc); err != nil {
		a.skip = "pipe does not echo: " + err.Error() + "; agent log ends: " + tail(ag.out.String(), 400) + "; daemon log ends: " + tail(d.proc.out.String(), 200)
		return a
	}
	if iperfAddr != "" && dev {
		m2, err := d.addPublic(ctx, tr, 100)
		if err == nil {
			var ag2 *child
			ag2, err = d.startAgent(ctx, m2, iperfAddr, ao)
			if err == nil {
				a.hop2 = append(a.hop2, ag2.pid())
				a.iperf = publicAddr(m2)
			}
		}
		if err != nil {
			log.Warn("iperf pipe", "anchor", a.name, "err", err)
		}
	}
	return a
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// warmUp retries an echo through the pipe for up to 10 s.
func warmUp(ctx context.Context, dial dialFunc) error {
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		r := holdConns(cctx, dial, 1, 1)
		cancel()
		r.close()
		if r.Failed == 0 {
			return nil
		}
		err = r.FirstErr
		time.Sleep(200 * time.Millisecond)
	}
	return errors.Join(err, ctx.Err())
}

// bulkCases are the throughput measurements: streams and direction.
var bulkCases = []struct {
	key      string
	streams  int
	download bool
}{
	{"1↑", 1, false}, {"1↓", 1, true}, {"8↑", 8, false}, {"8↓", 8, true},
}

// measureAnchor runs one repeat of every measurement on a.
func measureAnchor(ctx context.Context, log *slog.Logger, cfg benchConfig, res *results, a *anchor, prof *goProfiles) {
	n := a.name
	gb := func(b int64) float64 { return float64(b) / 1e9 }
	secs := func(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }
	notes := func(ns []string) {
		for _, s := range ns {
			res.note(n, "%s", s)
		}
	}
	// (1) and (5): bulk throughput with our tool, and CPU per GB.
	for i, bc := range bulkCases {
		c0, c1, c2 := cpuOf(a.pids()), cpuOf(a.hop1Pids()), cpuOf(a.hop2Pids())
		cctx, cancel := context.WithTimeout(ctx, cfg.BulkDur+20*time.Second)
		var (
			r   bulkResult
			err error
		)
		p := prof
		if i != 0 {
			p = nil // profile the first case (one stream up) only
		}
		notes(p.cpuDuring(ctx, n, "bulk-"+bc.key, secs(cfg.BulkDur), func() {
			r, err = bulk(cctx, a.svc, bc.streams, cfg.BulkDur, bc.download)
		}))
		cancel()
		if err != nil {
			res.note(n, "bulk %s: %v", bc.key, err)
			res.add(n, "bulk "+bc.key, math.NaN())
			continue
		}
		res.add(n, "bulk "+bc.key, r.bitsPerSec()/1e9)
		if len(a.pids()) > 0 && r.Bytes > 0 {
			res.add(n, "cpu/GB "+bc.key, (cpuOf(a.pids())-c0)/gb(r.Bytes))
			res.add(n, "cpu/GB hop1 "+bc.key, (cpuOf(a.hop1Pids())-c1)/gb(r.Bytes))
			if len(a.hop2) > 0 {
				res.add(n, "cpu/GB hop2 "+bc.key, (cpuOf(a.hop2Pids())-c2)/gb(r.Bytes))
			}
		}
	}
	// (1) iperf3 through the pipe.
	if a.iperf != "" {
		for _, bc := range bulkCases {
			bps, err := runIperf(ctx, a.iperf, bc.streams, cfg.BulkDur, bc.download)
			if err != nil {
				res.note(n, "iperf3 %s: %v", bc.key, err)
				bps = math.NaN()
			}
			res.add(n, "iperf "+bc.key, bps/1e9)
			time.Sleep(200 * time.Millisecond) // let iperf3 -s reset
		}
	}
	// (2) latency.
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	var (
		lr  latencyResult
		err error
	)
	notes(prof.cpuDuring(ctx, n, phaseLatency, 2, func() { lr, err = pingPong(cctx, a.svc, cfg.PingN, 64) }))
	cancel()
	if err != nil {
		res.note(n, "latency: %v", err)
		for _, k := range []string{"p50", "p99", "p99.9"} {
			res.add(n, k, math.NaN())
		}
	} else {
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		res.add(n, "p50", us(percentile(lr.RTT, 50)))
		res.add(n, "p99", us(percentile(lr.RTT, 99)))
		res.add(n, "p99.9", us(percentile(lr.RTT, 99.9)))
		res.add(n, "round trips", float64(len(lr.RTT)))
		if len(lr.RTT) < cfg.PingN {
			res.note(n, "latency: only %d of %d round trips fit the %v budget", len(lr.RTT), cfg.PingN, pingBudget)
		}
	}
	// (3) and (5): connection rate and CPU per connection.
	c0 := cpuOf(a.pids())
	var rr rateResult
	notes(prof.cpuDuring(ctx, n, phaseRate, secs(cfg.RateDur), func() { rr = connRate(ctx, a.svc, cfg.Workers, cfg.RateDur) }))
	res.add(n, "conn/s", float64(rr.OK)/rr.Elapsed.Seconds())
	res.add(n, "conn fail", float64(rr.Failed))
	if rr.FirstErr != nil {
		res.note(n, "connection rate: %d failures, first: %v", rr.Failed, rr.FirstErr)
	}
	if len(a.pids()) > 0 && rr.OK > 0 {
		res.add(n, "cpu µs/conn", (cpuOf(a.pids())-c0)*1e6/float64(rr.OK))
	}
	time.Sleep(500 * time.Millisecond) // let TIME_WAIT and relay cleanup settle
	// Memory at rest after the throughput, latency and rate runs, with no
	// connection open (before the hold test, whose thousands of held
	// connections leave memory the Go runtime returns to the kernel only
	// over minutes).
	if len(a.pids()) > 0 {
		if kb, err := rssKB(a.pids()); err == nil {
			res.add(n, "rest rss", float64(kb)/1024)
		}
		if kb, err := memKB(a.pids(), "smaps_rollup", "Pss:"); err == nil {
			res.add(n, "rest pss", float64(kb)/1024)
		}
		if kb, err := memKB(a.pids(), "status", "RssAnon:"); err == nil {
			res.add(n, "rest anon", float64(kb)/1024)
		}
	}
	// (4) concurrency and memory.
	measureHold(ctx, log, res, a, cfg.HoldNs, func() { notes(prof.heap(ctx, n, phaseHeld)) })
}

// measureHold opens connections up to each count of ns in turn (ascending;
// the connections of one level stay open into the next), verifies each by
// an echo and records RSS and descriptors against the level before any was
// opened. All are closed at the end.
// atMax, when not nil, runs while the most connections are held.
func measureHold(ctx context.Context, log *slog.Logger, res *results, a *anchor, ns []int, atMax func()) {
	n := a.name
	before, errB := rssKB(a.pids())
	fds0, _, errF := fdCount(a.pids())
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
		time.Sleep(time.Second) // let the relays notice before the next anchor
	}()
	failed := 0
	for _, hn := range ns {
		key := fmt.Sprintf("hold %d", hn)
		if ctx.Err() != nil || hn <= len(held)+failed {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		h := holdConns(cctx, a.svc, hn-len(held)-failed, 64)
		cancel()
		held = append(held, h.Conns...)
		failed += h.Failed
		at, errA := settledRSS(ctx, a.pids(), holdSettle)
		fds1, pipes1, errF1 := fdCount(a.pids())
		bad := reverify(held)
		ok := len(held) - bad
		res.add(n, key+" ok", float64(ok))
		if failed > 0 || bad > 0 {
			res.note(n, "%s: %d failed to open, %d failed the second echo; first: %v", key, failed, bad, h.FirstErr)
		}
		if len(a.pids()) == 0 || errB != nil || errA != nil || ok == 0 {
			continue
		}
		res.add(n, key+" rss0", float64(before)/1024)
		res.add(n, key+" rss", float64(at)/1024)
		res.add(n, key+" KB/conn", float64(at-before)/float64(ok))
		if errF == nil && errF1 == nil {
			res.add(n, key+" fd/conn", float64(fds1-fds0)/float64(ok))
			res.add(n, key+" pipes", float64(pipes1))
		}
		log.Debug("held", "anchor", n, "n", hn, "ok", ok, "rss_kb", at)
	}
	if atMax != nil && len(held) > 0 {
		atMax()
	}
}

// holdSettle is how long the hold test watches the relay's RSS after
// opening and verifying the connections of one level.
const holdSettle = 3 * time.Second

// settledRSS returns the least RSS of pids seen over d, read every 250 ms:
// what the held connections cost once the relay has settled. Right after
// a level's connections were opened and echoed, the relay still holds
// the goroutines and buffers of that activity (each direction lingers
// 100 ms before it parks, and the runtime keeps freed stacks until it
// returns them); idle held connections make the RSS fall, never rise.
func settledRSS(ctx context.Context, pids []int, d time.Duration) (int64, error) {
	var (
		least int64 = -1
		last  error
	)
	for end := time.Now().Add(d); ; {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		kb, err := rssKB(pids)
		if err != nil {
			last = err
		} else if least < 0 || kb < least {
			least = kb
		}
		if !time.Now().Before(end) {
			break
		}
	}
	if least < 0 {
		return 0, last
	}
	return least, nil
}

// cpuOf returns the CPU seconds of pids, NaN on error.
func cpuOf(pids []int) float64 {
	if len(pids) == 0 {
		return 0
	}
	d, err := cpuTime(pids)
	if err != nil {
		return math.NaN()
	}
	return d.Seconds()
}

// runGoBench runs the hot-path Go benchmarks of the repository.
func runGoBench(ctx context.Context, log *slog.Logger, cfg benchConfig) string {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem"}, cfg.GoBenchArg...)
	args = append(args, "./core/...", "./sdk/...", "./transports/...", "./plugins/...")
	log.Info("go benchmarks", "args", strings.Join(args, " "))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "go", args...)
	cmd.Dir = cfg.RepoDir
	out, err := cmd.CombinedOutput()
	s := "$ go " + strings.Join(args, " ") + "\n" + string(out)
	if err != nil {
		s += fmt.Sprintf("\n(exit: %v)\n", err)
	}
	return s
}
