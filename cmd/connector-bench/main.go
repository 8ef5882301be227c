// Command connector-bench is the load tool and benchmark harness of
// iofog-connector (issue 6).
//
//	connector-bench run [flags]      start every anchor, measure, write BENCHMARKS.md
//	connector-bench svc --addr A     the echo/sink/source service the harness measures through
//	connector-bench latency|rate|hold|bulk --addr A [flags]
//	                                 one load measurement against a service address
//	connector-bench soak [flags]     long run with churn and kills, write SOAK.md (issue 9)
//
// Every process the harness starts is stopped by its PID when it finishes,
// fails or is interrupted.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is the whole program; it returns the exit code.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: connector-bench run|soak|svc|latency|rate|hold|bulk [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, log, args[1:])
	case "soak":
		err = cmdSoak(ctx, log, args[1:])
	case "svc":
		fs := flag.NewFlagSet("svc", flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		if err = fs.Parse(args[1:]); err == nil {
			if _, err = raiseNofile(); err == nil {
				err = runService(ctx, log, *addr)
			}
		}
	case "latency", "rate", "hold", "bulk":
		err = cmdLoad(ctx, args[0], args[1:])
	default:
		err = fmt.Errorf("connector-bench: unknown command %q", args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "connector-bench:", err)
		return 1
	}
	return 0
}

// cmdRun parses the harness flags and runs it.
func cmdRun(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "fewer repeats, smaller N, shorter runs (development)")
	repeats := fs.Int("repeats", 0, "repeats per measurement (default 3, quick 1)")
	bin := fs.String("bin", "bin/iofog-connector", "iofog-connector binary")
	pluginDir := fs.String("plugin-dir", "", "transport plugin directory for daemon and agents")
	transports := fs.String("transports", "", "comma-separated transports (default: those `iofog-connector plugins` lists)")
	out := fs.String("out", "BENCHMARKS.md", "report path")
	pool := fs.Int("pool", 0, "agent --pool (0: the agent's default)")
	hold := fs.String("hold", "", "ascending comma-separated held-connection counts (default 1000,5000,9000; quick 100,500)")
	startMaps := fs.Int("start-mappings", 0, "mappings stored for the start-time test (default 10000, quick 1000)")
	only := fs.String("only", "", "development: \"control\" measures only the control plane")
	pprofDir := fs.String("pprof", "", "directory for Go CPU profiles of each relay's daemon and agent under each load (first repeat) and heap profiles with the most connections held, each with a `go tool pprof -top` summary")
	gobench := fs.Bool("gobench", true, "also run the Go benchmarks of core, sdk, transports, plugins (quick: off unless given)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	repo, _ := os.Getwd()
	absBin, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	cfg := benchConfig{
		Quick: *quick, Repeats: 3, Bin: absBin, Out: *out, RepoDir: repo, Pool: *pool,
		BulkDur: 2 * time.Second, RateDur: 3 * time.Second, PingN: 10000, Workers: 50,
		HoldNs: []int{1000, 5000, 9000}, AddsOne: 300, AddsEight: 1000, StartMaps: 10000,
		GoBench: *gobench, Profile: true, GoBenchArg: []string{"-count", "3", "-benchtime", "500ms"},
		Command: "make bench   # = connector-bench run " + strings.Join(args, " "),
	}
	if *quick {
		cfg.Repeats, cfg.BulkDur, cfg.RateDur, cfg.PingN = 1, time.Second, time.Second, 2000
		cfg.HoldNs, cfg.AddsOne, cfg.AddsEight, cfg.StartMaps = []int{100, 500}, 50, 200, 1000
		cfg.GoBenchArg = []string{"-count", "1", "-benchtime", "100ms"}
		cfg.Profile = false
		if !explicit(fs, "gobench") {
			cfg.GoBench = false
		}
		cfg.Command = "make bench-quick   # = connector-bench run " + strings.Join(args, " ")
	}
	if *startMaps > 0 {
		cfg.StartMaps = *startMaps
	}
	if *pprofDir != "" {
		if cfg.PprofDir, err = filepath.Abs(*pprofDir); err != nil {
			return err
		}
		if err := os.MkdirAll(cfg.PprofDir, 0o755); err != nil {
			return fmt.Errorf("connector-bench: -pprof: %w", err)
		}
	}
	cfg.OnlyControl = *only == "control"
	if *repeats > 0 {
		cfg.Repeats = *repeats
	}
	if *pluginDir != "" {
		if cfg.PluginDir, err = filepath.Abs(*pluginDir); err != nil {
			return err
		}
	}
	if *transports != "" {
		cfg.Transports = strings.Split(*transports, ",")
	}
	if *hold != "" {
		cfg.HoldNs = nil
		for _, s := range strings.Split(*hold, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("connector-bench: -hold: %w", err)
			}
			cfg.HoldNs = append(cfg.HoldNs, n)
		}
	}
	return runHarness(ctx, log, cfg)
}

// explicit reports whether the flag name was given on the command line.
func explicit(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// cmdLoad runs one load measurement against a service address and prints
// the figures.
func cmdLoad(ctx context.Context, what string, args []string) error {
	fs := flag.NewFlagSet(what, flag.ContinueOnError)
	addr := fs.String("addr", "", "service address (a connector-bench svc, direct or through a relay)")
	ca := fs.String("ca", "", "PEM certificate to trust: dial with TLS")
	n := fs.Int("n", 10000, "latency: round trips; hold: connections")
	size := fs.Int("size", 64, "latency: message size")
	workers := fs.Int("workers", 50, "rate: concurrent workers")
	streams := fs.Int("streams", 1, "bulk: parallel streams")
	down := fs.Bool("down", false, "bulk: download instead of upload")
	dur := fs.Duration("d", 5*time.Second, "rate, bulk: duration; hold: how long the verified connections stay open")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return fmt.Errorf("connector-bench: %s: -addr is required", what)
	}
	if _, err := raiseNofile(); err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	dial := newDialer(*addr, tlsCfg)
	ctx, cancel := context.WithTimeout(ctx, *dur+5*time.Minute)
	defer cancel()
	switch what {
	case "latency":
		r, err := pingPong(ctx, dial, *n, *size)
		if err != nil {
			return err
		}
		fmt.Printf("round trips %d  p50 %v  p99 %v  p99.9 %v  max %v\n", len(r.RTT),
			percentile(r.RTT, 50), percentile(r.RTT, 99), percentile(r.RTT, 99.9), percentile(r.RTT, 100))
	case "rate":
		r := connRate(ctx, dial, *workers, *dur)
		fmt.Printf("conns %d  failures %d  %.0f conns/s  first error: %v\n", r.OK, r.Failed, float64(r.OK)/r.Elapsed.Seconds(), r.FirstErr)
	case "hold":
		h := holdConns(ctx, dial, *n, 64)
		bad := reverify(h.Conns)
		fmt.Printf("held %d  failed %d  failed second echo %d  first error: %v\n", len(h.Conns), h.Failed, bad, h.FirstErr)
		select { // keep them open for -d, to look at the relay meanwhile
		case <-time.After(*dur):
		case <-ctx.Done():
		}
		h.close()
	case "bulk":
		r, err := bulk(ctx, dial, *streams, *dur, *down)
		if err != nil {
			return err
		}
		fmt.Printf("%d bytes in %v: %.2f Gbit/s\n", r.Bytes, r.Elapsed.Round(time.Millisecond), r.bitsPerSec()/1e9)
	}
	return nil
}
