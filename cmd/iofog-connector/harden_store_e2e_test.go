package main

// End-to-end fault tests of the mapping store (issue 9, item 2) with the
// real binary: damaged files stop start-up and are left byte for byte,
// kill -9 at random instants loses no acknowledged change, and a full data
// dir refuses changes without losing anything and recovers.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/api/control"
)

// storeE2EFiles returns the regular files of a data dir (not the lock file
// or the control socket) by name.
func storeE2EFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "configs.lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// storeE2EStartRefused starts the daemon on d's settings and data dir and
// expects it to refuse the store: a non-zero exit within 30 s whose output
// holds every one of want, with every file of the data dir byte for byte
// as before. A daemon that comes up instead is killed (by PID) and the
// test fails; if removedID is set and is served again, the failure says
// that an acknowledged remove came back.
func storeE2EStartRefused(t *testing.T, d *e2eDaemon, removedID string, want ...string) {
	t.Helper()
	before := storeE2EFiles(t, d.DataDir)
	out := &e2eBuffer{}
	cmd := exec.Command(d.Bin, "start", "--config", d.ConfigPath, "--data-dir", d.DataDir)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for started := false; !started; {
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
				t.Fatalf("daemon on a damaged store: exit %v, want a non-zero exit\n%s", err, out)
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("start-up refusal does not say %q:\n%s", w, out)
				}
			}
			if after := storeE2EFiles(t, d.DataDir); !storeE2ESame(before, after) {
				t.Fatalf("refused store was changed:\nbefore %q\nafter  %q", before, after)
			}
			return
		case <-deadline:
			_ = cmd.Process.Kill() // by PID: the process this test started
			<-done
			t.Fatalf("daemon neither refused nor came up within 30 s:\n%s", out)
		case <-time.After(100 * time.Millisecond):
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			code, _, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {"all"}})
			cancel()
			started = err == nil && code == 200
		}
	}
	// The daemon came up on a damaged store.
	if removedID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code, _, _ := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {removedID}})
		cancel()
		if code == 200 {
			t.Errorf("the acknowledged remove of %s came back: the mapping is served again", removedID)
		}
	}
	_ = cmd.Process.Kill() // by PID: the process this test started
	<-done
	after := storeE2EFiles(t, d.DataDir)
	t.Fatalf("daemon started on a damaged store (files changed: %v):\n%s", !storeE2ESame(before, after), out)
}

func storeE2ESame(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// storeE2EMappings decodes configs.json generically, to derive damaged
// variants of it.
func storeE2EMappings(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var f struct {
		Mappings []map[string]any `json:"mappings"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Mappings
}

func storeE2EConfigs(t *testing.T, ms []map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"mappings": ms})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// storeE2EStatus asks the API for mapping id: its code and ports.
func storeE2EStatus(t *testing.T, d *e2eDaemon, id string) (int, [2]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, body, err := d.Post(ctx, "/api/v2/status", url.Values{"mappingid": {id}})
	if err != nil {
		t.Fatalf("status %s: %v", id, err)
	}
	p1, _ := body["port1"].(float64)
	p2, _ := body["port2"].(float64)
	return code, [2]int{int(p1), int(p2)}
}

// storeE2EList asks the daemon's control socket (what `status` prints) for
// every mapping and its ports.
func storeE2EList(t *testing.T, d *e2eDaemon) map[string][2]int {
	t.Helper()
	sock := filepath.Join(d.DataDir, control.SocketName)
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://control/status")
	if err != nil {
		t.Fatalf("control socket status: %v", err)
	}
	defer resp.Body.Close()
	var st struct {
		Mappings []struct {
			ID    string `json:"id"`
			Port1 int    `json:"port1"`
			Port2 int    `json:"port2"`
			Down  string `json:"down"`
		} `json:"mappings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("control socket status: %v", err)
	}
	out := map[string][2]int{}
	for _, m := range st.Mappings {
		if m.Down != "" {
			t.Errorf("mapping %s is down after restart: %s", m.ID, m.Down)
		}
		out[m.ID] = [2]int{m.Port1, m.Port2}
	}
	return out
}

// TestStoreE2EDamagedConfigsRefused: each damaged configs.json (null, {},
// a misspelt key, trailing garbage, a second object, a duplicate id, a
// duplicate port) stops start-up with a non-zero exit and a message naming
// the file and the fault, and the data dir is left byte for byte. On
// a9db89d the first three loaded as an empty store and the file was
// rewritten as {"mappings":[]}; the others were dropped or merged.
func TestStoreE2EDamagedConfigsRefused(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	pub := d.AddMapping(t, e2ePublicBody)
	priv := d.AddMapping(t, e2ePrivateBody)
	d.Stop(t)
	path := filepath.Join(d.DataDir, "configs.json")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ms := storeE2EMappings(t, good)
	if len(ms) != 2 {
		t.Fatalf("configs.json after a clean stop holds %d mappings:\n%s", len(ms), good)
	}
	dupID := map[string]any{}
	dupPort := map[string]any{}
	for k, v := range ms[0] {
		dupID[k], dupPort[k] = v, v
	}
	dupID["port1"], dupID["port2"] = d.PortHi-1, d.PortHi
	dupPort["id"], dupPort["port2"] = "another-id", d.PortHi
	for _, tt := range []struct {
		name, content, want string
	}{
		{"null", "null", "not a JSON object"},
		{"empty object", "{}", `no "mappings" key`},
		{"misspelt key", strings.Replace(string(good), `"mappings"`, `"mapings"`, 1), `unknown top-level key "mapings"`},
		{"trailing garbage", string(good) + "xyz", "data after the JSON object"},
		{"second object", string(good) + `{"mappings":[]}`, "a second JSON value"},
		{"duplicate id", storeE2EConfigs(t, append(ms[:2:2], dupID)), "stored twice"},
		{"duplicate port", storeE2EConfigs(t, append(ms[:2:2], dupPort)), fmt.Sprintf("port %d is also used", int(ms[0]["port1"].(float64)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			storeE2EStartRefused(t, d, "", path, "corrupt", tt.want)
		})
	}
	// Put the good file back: everything is still there.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Start(t)
	for _, m := range []e2eMapping{pub, priv} {
		if code, ports := storeE2EStatus(t, d, m.ID); code != 200 || ports != [2]int{m.Port1, m.Port2} {
			t.Fatalf("mapping %s after the refusals: %d %v", m.ID, code, ports)
		}
	}
	d.Stop(t)
}

// storeE2EJournal kills d with SIGKILL (the journal then holds the changes
// since start) and returns the journal's path and its lines.
func storeE2EJournal(t *testing.T, d *e2eDaemon) (string, []string) {
	t.Helper()
	d.Kill9(t)
	path := filepath.Join(d.DataDir, "configs.journal")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.SplitAfter(string(b), "\n")
}

// TestStoreE2EJournalChecksumRefused: a complete journal record whose
// bytes changed (a port, still valid JSON) stops start-up naming the
// journal and the record; on a9db89d the changed port was loaded.
func TestStoreE2EJournalChecksumRefused(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 10})
	var ms []e2eMapping
	for range 3 {
		ms = append(ms, d.AddMapping(t, e2ePublicBody))
	}
	path, lines := storeE2EJournal(t, d)
	if len(lines) != 4 || lines[3] != "" {
		t.Fatalf("journal after 3 adds and kill -9: %q", lines)
	}
	p := fmt.Sprintf(`"port1":%d`, ms[1].Port1)
	if !strings.Contains(lines[1], p) {
		t.Fatalf("record 2 is not the second add: %q", lines[1])
	}
	lines[1] = strings.Replace(lines[1], p, fmt.Sprintf(`"port1":%d`, d.PortHi), 1)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	storeE2EStartRefused(t, d, "", path, "record 2 ", "checksum mismatch")
}

// TestStoreE2EAckedRemoveNotResurrected: the last journal record is an
// acknowledged remove. Whether a byte of it is damaged or its newline is,
// start-up refuses; on a9db89d the record was applied to the wrong id or
// dropped as a torn write, and the removed mapping came back.
func TestStoreE2EAckedRemoveNotResurrected(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(rec, id string) string
		want   string
	}{
		{"id", func(rec, id string) string { return strings.Replace(rec, id, id[:len(id)-1]+"x", 1) }, "checksum mismatch"},
		{"newline", func(rec, _ string) string { return strings.TrimSuffix(rec, "\n") + "\x00" }, "unterminated final record"},
		{"garbage", func(rec, _ string) string { return strings.TrimSuffix(rec, "\n") + "}" }, "unterminated final record"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := e2eStartDaemon(t, e2eOptions{Ports: 10})
			gone := d.AddMapping(t, e2ePublicBody)
			kept := d.AddMapping(t, e2ePrivateBody)
			d.RemoveMapping(t, gone.ID) // acknowledged
			path, lines := storeE2EJournal(t, d)
			if len(lines) != 4 || !strings.Contains(lines[2], `"remove"`) || !strings.Contains(lines[2], gone.ID) {
				t.Fatalf("journal: %q", lines)
			}
			lines[2] = tt.damage(lines[2], gone.ID)
			if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			storeE2EStartRefused(t, d, gone.ID, path, "record 3 ", tt.want)
			_ = kept
		})
	}
}

// storeE2EBody is the Controller's add body with an id of the test's
// choosing, so that an add whose answer was lost can still be recognised.
func storeE2EBody(id string, private bool) string {
	if private {
		return `{"type":"private","id":"` + id + `","maxconnectionsport1":1,"maxconnectionsport2":1,"heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":200000}`
	}
	return `{"type":"public","id":"` + id + `","maxconnections":60,"heartbeatabsencethreshold":200000}`
}

// storeE2EModel is what the clients know of the store: acknowledged
// mappings, acknowledged removals, and changes whose answer never came.
type storeE2EModel struct {
	mu        sync.Mutex
	live      map[string][2]int // acknowledged added, not acknowledged removed
	removed   map[string]bool   // acknowledged removed
	maybeAdd  map[string]bool   // add sent, no answer
	maybeGone map[string]bool   // remove sent, no answer
	owner     map[string]int    // id -> worker that added it
	acks      int
}

// TestStoreE2EKill9RoundsAddsAndRemoves: in each of 5 rounds, 6 clients
// add and remove mappings concurrently and the daemon is killed with
// SIGKILL at a random instant; after each restart the mappings the
// control socket (`status`) lists are exactly the acknowledged set, give
// or take the changes whose answer never came, with the same ports.
func TestStoreE2EKill9RoundsAddsAndRemoves(t *testing.T) {
	const rounds, workers, opsPerWorker = 5, 6, 30
	d := e2eStartDaemon(t, e2eOptions{Ports: 800})
	model := &storeE2EModel{live: map[string][2]int{}, removed: map[string]bool{}, maybeAdd: map[string]bool{},
		maybeGone: map[string]bool{}, owner: map[string]int{}}
	for round := 1; round <= rounds; round++ {
		killAt := model.acks + 8 + mrand.IntN(50)
		kill, killed := make(chan struct{}), make(chan struct{})
		var killOnce sync.Once
		var wg sync.WaitGroup
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		proc := d.cmd.Process // this round's daemon, never the next one
		go func() {
			defer close(killed)
			select {
			case <-kill:
				time.Sleep(time.Duration(mrand.IntN(15000)) * time.Microsecond)
				_ = proc.Kill() // SIGKILL by PID; reaped by Kill9 below
			case <-ctx.Done():
			}
		}()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				storeE2EWorker(ctx, t, d, model, round, w, opsPerWorker, func(acks int) {
					if acks >= killAt {
						killOnce.Do(func() { close(kill) })
					}
				})
			}()
		}
		wg.Wait()
		killOnce.Do(func() { close(kill) }) // all ops done first: kill now
		<-killed
		d.Kill9(t)
		cancel()
		d.Client.CloseIdleConnections()
		d.Start(t)
		got := storeE2EList(t, d)
		inflight := model.check(t, round, got)
		t.Logf("round %d: %d live after restart, %d acknowledged changes so far, %d in flight at the kill",
			round, len(got), model.acks, inflight)
	}
	// The API agrees, mapping by mapping.
	for id, ports := range model.live {
		if code, got := storeE2EStatus(t, d, id); code != 200 || got != ports {
			t.Fatalf("status %s: %d %v, want 200 %v", id, code, got, ports)
		}
	}
	d.Stop(t)
	if ids := storedIDs(t, d.DataDir); len(ids) != len(model.live) {
		t.Fatalf("configs.json holds %d mappings after a clean stop, want %d", len(ids), len(model.live))
	}
}

// storeE2EWorker adds (two in three ops) and removes its own acknowledged
// mappings until ops are done or the daemon stops answering.
func storeE2EWorker(ctx context.Context, t *testing.T, d *e2eDaemon, m *storeE2EModel, round, w, ops int, acked func(int)) {
	for i := 0; i < ops && ctx.Err() == nil; i++ {
		if i%3 == 2 {
			m.mu.Lock()
			var id string
			for cand, o := range m.owner {
				if _, ok := m.live[cand]; ok && o == w && !m.maybeGone[cand] {
					id = cand
					break
				}
			}
			if id != "" {
				m.maybeGone[id] = true
			}
			m.mu.Unlock()
			if id == "" {
				continue
			}
			code, body, err := d.Post(ctx, "/api/v2/mapping/remove", url.Values{"mappingid": {id}})
			if err != nil {
				return // the daemon died mid-request: not acknowledged
			}
			m.mu.Lock()
			if code == 200 {
				delete(m.maybeGone, id)
				delete(m.live, id)
				m.removed[id] = true
				m.acks++
			}
			n := m.acks
			m.mu.Unlock()
			if code != 200 {
				t.Errorf("remove %s answered %d %v", id, code, body)
				return
			}
			acked(n)
			continue
		}
		id := fmt.Sprintf("r%d-w%d-%d", round, w, i)
		m.mu.Lock()
		m.maybeAdd[id], m.owner[id] = true, w
		m.mu.Unlock()
		ans, code, err := d.TryAddMapping(ctx, storeE2EBody(id, i%2 == 1))
		if err != nil {
			return
		}
		m.mu.Lock()
		if code == 200 {
			delete(m.maybeAdd, id)
			m.live[id] = [2]int{ans.Port1, ans.Port2}
			m.acks++
		}
		n := m.acks
		m.mu.Unlock()
		if code != 200 || ans.ID != id {
			t.Errorf("add %s answered %d %+v", id, code, ans)
			return
		}
		acked(n)
	}
}

// check compares what the restarted daemon lists with the model, then
// settles the changes whose answer never came by what the daemon has.
func (m *storeE2EModel) check(t *testing.T, round int, got map[string][2]int) (inflight int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	inflight = len(m.maybeAdd) + len(m.maybeGone)
	for id, ports := range m.live {
		gp, ok := got[id]
		switch {
		case !ok && m.maybeGone[id]:
		case !ok:
			t.Fatalf("round %d: acknowledged mapping %s lost after kill -9", round, id)
		case gp != ports:
			t.Fatalf("round %d: acknowledged mapping %s moved from %v to %v", round, id, ports, gp)
		}
	}
	for id := range got {
		if m.removed[id] {
			t.Fatalf("round %d: acknowledged remove of %s came back after kill -9", round, id)
		}
		if _, ok := m.live[id]; !ok && !m.maybeAdd[id] {
			t.Fatalf("round %d: mapping %s appeared, never added", round, id)
		}
	}
	for id := range m.maybeAdd {
		if p, ok := got[id]; ok {
			m.live[id] = p
		}
		delete(m.maybeAdd, id)
	}
	for id := range m.maybeGone {
		if _, ok := got[id]; !ok {
			delete(m.live, id)
			m.removed[id] = true
		}
		delete(m.maybeGone, id)
	}
	return inflight
}

// storeE2EDisk fills and frees the space of a daemon's data dir.
type storeE2EDisk struct {
	how  string
	fill func(t *testing.T)
	free func(t *testing.T)
}

// storeE2ENoSpace prepares d (stopped) so that its data dir can be filled:
// a small tmpfs mounted on a new data dir when mount works (root), else a
// file size limit (RLIMIT_FSIZE, set with prlimit on the daemon; Go
// programs ignore SIGXFSZ, so writes fail with EFBIG). It skips only when
// neither is available. STORE_E2E_FULLDISK=fsize forces the second.
func storeE2ENoSpace(t *testing.T, d *e2eDaemon) storeE2EDisk {
	t.Helper()
	if os.Getenv("STORE_E2E_FULLDISK") != "fsize" {
		dir := filepath.Join(t.TempDir(), "tmpfs-data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=1m,mode=0700")
		if err == nil {
			t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
			d.DataDir = dir
			filler := filepath.Join(dir, "filler")
			return storeE2EDisk{
				how: "a 1 MiB tmpfs",
				fill: func(t *testing.T) {
					t.Helper()
					f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					for _, chunk := range []int{64 << 10, 4 << 10, 1} {
						for i := 0; i < 1<<20; i++ {
							if _, err := f.Write(make([]byte, chunk)); err != nil {
								if !errors.Is(err, syscall.ENOSPC) {
									t.Fatalf("filling the tmpfs: %v", err)
								}
								break
							}
						}
					}
				},
				free: func(t *testing.T) {
					t.Helper()
					if err := os.Remove(filler); err != nil {
						t.Fatal(err)
					}
				},
			}
		}
		t.Logf("mounting a tmpfs failed (%v); using a file size limit instead", err)
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no way to fill the data dir: mounting a tmpfs failed and prlimit is not installed")
	}
	// Start the daemon through a wrapper that applies the limit before
	// exec, so that a restart can be made while the "disk" is full.
	limit := filepath.Join(t.TempDir(), "limit")
	if err := os.WriteFile(limit, []byte("unlimited"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "iofog-connector-fsize")
	// Only the soft limit moves ("N:"), so no privilege is needed to raise
	// it again.
	script := fmt.Sprintf("#!/bin/sh\nexec %s --fsize=$(cat %s): -- %s \"$@\"\n", prlimit, limit, d.Bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	d.Bin = wrapper
	set := func(t *testing.T, v string) {
		t.Helper()
		if err := os.WriteFile(limit, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if d.Running() {
			if out, err := exec.Command(prlimit, "--pid", strconv.Itoa(d.PID()), "--fsize="+v+":").CombinedOutput(); err != nil {
				t.Fatalf("prlimit: %v %s", err, out)
			}
		}
	}
	return storeE2EDisk{
		how: "a file size limit (RLIMIT_FSIZE)",
		fill: func(t *testing.T) {
			t.Helper()
			st, err := os.Stat(filepath.Join(d.DataDir, "configs.journal"))
			if err != nil {
				t.Fatal(err)
			}
			set(t, strconv.FormatInt(st.Size(), 10))
		},
		free: func(t *testing.T) { set(t, "unlimited") },
	}
}

// storeE2ETryAdd adds a public mapping and returns its answer, status code
// and error message.
func storeE2ETryAdd(t *testing.T, d *e2eDaemon) (e2eMapping, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, body, err := d.Post(ctx, "/api/v2/mapping/add", url.Values{"mapping": {e2ePublicBody}})
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	var m e2eMapping
	if code == 200 {
		b, _ := json.Marshal(body)
		if err := json.Unmarshal(b, &m); err != nil || m.ID == "" {
			t.Fatalf("add answer %v", body)
		}
	}
	msg, _ := body["errormessage"].(string)
	return m, code, msg
}

// TestStoreE2EFullDisk: with the data dir full, adds (and removes) fail
// with 507 or 500 and a message saying the data dir is full; nothing
// acknowledged is lost, also across a kill -9 and a restart while full;
// when space returns, adds succeed again and survive a restart.
func TestStoreE2EFullDisk(t *testing.T) {
	d := e2eStartDaemon(t, e2eOptions{Ports: 200})
	d.Stop(t)
	disk := storeE2ENoSpace(t, d)
	t.Logf("filling the data dir with %s", disk.how)
	d.Start(t)
	acked := map[string][2]int{}
	for range 10 { // more than the removes that can fit in a journal block once adds no longer do
		m := d.AddMapping(t, e2ePublicBody)
		acked[m.ID] = [2]int{m.Port1, m.Port2}
	}
	disk.fill(t)
	full := func(t *testing.T, what string, code int, msg string) {
		t.Helper()
		if code != 507 && code != 500 {
			t.Fatalf("%s on a full data dir answered %d %q, want 507 or 500", what, code, msg)
		}
		if !strings.Contains(msg, "no space left in the data dir") {
			t.Fatalf("%s on a full data dir: errormessage %q does not say the data dir is full", what, msg)
		}
	}
	// The journal's last block may still hold a few records.
	failed := false
	for i := 0; i < 64 && !failed; i++ {
		m, code, msg := storeE2ETryAdd(t, d)
		if code == 200 {
			acked[m.ID] = [2]int{m.Port1, m.Port2}
			continue
		}
		full(t, "add", code, msg)
		failed = true
		t.Logf("add %d after filling: %d %q", i+1, code, msg)
	}
	if !failed {
		t.Fatal("64 adds succeeded on a full data dir")
	}
	for range 3 {
		_, code, msg := storeE2ETryAdd(t, d)
		full(t, "add", code, msg)
	}
	// A remove record is shorter than an add's and may still fit in the
	// journal's last block: remove until one fails, and that mapping must
	// stay.
	var someID string
	failed = false
	for id := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		code, body, err := d.Post(ctx, "/api/v2/mapping/remove", url.Values{"mappingid": {id}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if code == 200 {
			delete(acked, id)
			continue
		}
		msg, _ := body["errormessage"].(string)
		full(t, "remove", code, msg)
		someID, failed = id, true
		break
	}
	if !failed {
		t.Fatal("every remove succeeded on a full data dir")
	}
	var (
		code int
		msg  string
	)
	checkAll := func(what string) {
		t.Helper()
		got := storeE2EList(t, d)
		if len(got) != len(acked) {
			t.Fatalf("%s: %d mappings, %d acknowledged", what, len(got), len(acked))
		}
		for id, ports := range acked {
			if got[id] != ports {
				t.Fatalf("%s: acknowledged mapping %s at %v, want %v", what, id, got[id], ports)
			}
		}
	}
	checkAll("full data dir")
	// kill -9 and restart while still full: the daemon starts on its
	// journal (it cannot compact) and still refuses changes.
	d.Kill9(t)
	d.Start(t)
	checkAll("restart on a full data dir")
	_, code, msg = storeE2ETryAdd(t, d)
	full(t, "add after a restart", code, msg)
	// Space returns: changes work again at once.
	disk.free(t)
	for range 3 {
		m, code, msg := storeE2ETryAdd(t, d)
		if code != 200 {
			t.Fatalf("add after space returned: %d %q", code, msg)
		}
		acked[m.ID] = [2]int{m.Port1, m.Port2}
	}
	d.RemoveMapping(t, someID)
	delete(acked, someID)
	checkAll("space returned")
	d.Kill9(t)
	d.Start(t)
	checkAll("restart after space returned")
	d.Stop(t)
	b, err := os.ReadFile(filepath.Join(d.DataDir, "configs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte(`"id"`)); n != len(acked) {
		t.Fatalf("configs.json after a clean stop holds %d mappings, want %d", n, len(acked))
	}
}
