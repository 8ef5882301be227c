package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pprofEnvVar is the variable that makes iofog-connector (daemon and
// agent) serve net/http/pprof on a loopback address.
const pprofEnvVar = "IOFOG_CONNECTOR_PPROF"

// pprofTarget is one relay process serving Go's profiling endpoints.
type pprofTarget struct {
	hop  string // "daemon" or "agent"
	addr string // 127.0.0.1:PORT
}

// pprofEnv returns the environment of a child that serves pprof on a free
// loopback port, and that address; nil and "" when profiling is off.
func pprofEnv(on bool) ([]string, string, error) {
	if !on {
		return nil, "", nil
	}
	p, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(p)
	return append(os.Environ(), pprofEnvVar+"="+addr), addr, nil
}

// goProfiles captures Go profiles of an anchor's relay processes into dir.
type goProfiles struct {
	dir     string
	targets []pprofTarget
	client  *http.Client
}

// cpuDuring fetches a CPU profile of every target for secs seconds while
// load runs, and writes each as <anchor>_<phase>_<hop>.cpu.pprof with a
// symbolised top-40 summary beside it (.txt). The load's error is returned;
// profiling problems are returned as notes, never stopping the run.
func (g *goProfiles) cpuDuring(ctx context.Context, anchor, phase string, secs int, load func()) []string {
	if g == nil || len(g.targets) == 0 {
		load()
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		notes []string
	)
	for _, t := range g.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", t.addr, secs)
			if err := g.fetch(ctx, url, g.path(anchor, phase, t.hop, "cpu"), time.Duration(secs+30)*time.Second); err != nil {
				mu.Lock()
				notes = append(notes, fmt.Sprintf("go profile %s %s: %v", phase, t.hop, err))
				mu.Unlock()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // the profilers are running before the load starts
	load()
	wg.Wait()
	return notes
}

// heap writes a heap profile of every target (in-use memory now).
func (g *goProfiles) heap(ctx context.Context, anchor, phase string) []string {
	if g == nil {
		return nil
	}
	var notes []string
	for _, t := range g.targets {
		url := fmt.Sprintf("http://%s/debug/pprof/heap", t.addr)
		if err := g.fetch(ctx, url, g.path(anchor, phase, t.hop, "heap"), 30*time.Second); err != nil {
			notes = append(notes, fmt.Sprintf("go heap profile %s %s: %v", phase, t.hop, err))
		}
	}
	return notes
}

func (g *goProfiles) path(anchor, phase, hop, kind string) string {
	name := strings.NewReplacer(" ", "-", "/", "-", "↑", "up", "↓", "down").Replace(anchor + "_" + phase + "_" + hop)
	return filepath.Join(g.dir, name+"."+kind+".pprof")
}

// fetch writes url's body to path and a `go tool pprof -top` summary of
// it to path's .txt sibling (Go profiles carry their symbols).
func (g *goProfiles) fetch(ctx context.Context, url, path string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 256<<20)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	args := []string{"tool", "pprof", "-top", "-nodecount=40"}
	if strings.HasSuffix(path, ".heap.pprof") {
		args = append(args, "-sample_index=inuse_space")
	}
	out, err := exec.CommandContext(ctx, "go", append(args, path)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return os.WriteFile(strings.TrimSuffix(path, ".pprof")+".txt", out, 0o644)
}
