package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/settings"
)

func TestPoolText(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, "none"},
		{[]int{7000}, "7000"},
		{[]int{7000, 7001, 7002, 7005, 7007, 7008}, "7000-7002,7005,7007-7008"},
		{[]int{1, 3, 5, 7, 9, 11, 13, 15, 17, 19}, "1,3,5,7,9,11,13,15,..."},
	}
	for _, tt := range tests {
		if got := poolText(tt.in); got != tt.want {
			t.Errorf("poolText(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func reloadBase() settings.Settings {
	return settings.Settings{File: "/etc/c.conf", Pool: []int{7000, 7001, 7002}, LogLevel: slog.LevelInfo, APIAddress: ":443",
		DataDir: "/var/lib/c", Transport: "tcp"}
}

// TestPlanReload: each reloadable setting is planned with a summary, each
// other changed setting is reported for a restart, and the token never
// shows in the summary.
func TestPlanReload(t *testing.T) {
	const oldTok, newTok = "old-token-0123456789", "new-token-0123456789"
	tests := []struct {
		name        string
		edit        func(*settings.Settings)
		curTok      string
		nextTok     string
		wantLevel   bool
		wantPool    bool
		wantToken   bool
		wantChanges []string
		wantRestart []string
	}{
		{name: "nothing", edit: func(*settings.Settings) {}, curTok: oldTok, nextTok: oldTok},
		{name: "level", edit: func(s *settings.Settings) { s.LogLevel = slog.LevelDebug }, wantLevel: true, wantChanges: []string{"log-level info -> debug"}},
		{name: "pool", edit: func(s *settings.Settings) { s.Pool = []int{8000, 8001} }, wantPool: true, wantChanges: []string{"ports 7000-7002 (3) -> 8000-8001 (2)"}},
		{name: "token replaced", edit: func(*settings.Settings) {}, curTok: oldTok, nextTok: newTok, wantToken: true, wantChanges: []string{"api-token replaced"}},
		{name: "token set", edit: func(*settings.Settings) {}, nextTok: newTok, wantToken: true, wantChanges: []string{"api-token set"}},
		{name: "token removed", edit: func(*settings.Settings) {}, curTok: oldTok, wantToken: true, wantChanges: []string{"api-token removed"}},
		{name: "restart keys", edit: func(s *settings.Settings) {
			s.APIAddress, s.Transport, s.Dev, s.PublicWaitTimeout = ":8443", "yamux", true, 7e9
		}, wantRestart: []string{"dev", "api-address", "transport", "public-wait-timeout"}},
		{name: "all at once", edit: func(s *settings.Settings) {
			s.LogLevel, s.Pool, s.BindHost = slog.LevelWarn, []int{7000}, "10.0.0.1"
		}, curTok: oldTok, nextTok: newTok, wantLevel: true, wantPool: true, wantToken: true,
			wantChanges: []string{"log-level info -> warn", "ports 7000-7002 (3) -> 7000 (1)", "api-token replaced"}, wantRestart: []string{"bind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, next := reloadBase(), reloadBase()
			tt.edit(&next)
			p := planReload(&cur, &next, tt.curTok, tt.nextTok)
			if (p.Level != nil) != tt.wantLevel || (p.Pool != nil) != tt.wantPool || (p.Token != nil) != tt.wantToken {
				t.Fatalf("plan level %v pool %v token %v; want %v %v %v", p.Level, p.Pool, p.Token != nil, tt.wantLevel, tt.wantPool, tt.wantToken)
			}
			if p.Token != nil && *p.Token != tt.nextTok {
				t.Fatalf("planned token is not the new one")
			}
			if len(p.Changes) != len(tt.wantChanges) {
				t.Fatalf("changes %q, want %q", p.Changes, tt.wantChanges)
			}
			for i, w := range tt.wantChanges {
				if !strings.HasPrefix(p.Changes[i], w) {
					t.Errorf("change %d = %q, want %q...", i, p.Changes[i], w)
				}
			}
			var keys []string
			for _, k := range p.Restart {
				keys = append(keys, k.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tt.wantRestart, ",") {
				t.Errorf("restart keys %q, want %q", keys, tt.wantRestart)
			}
			for _, c := range p.Changes {
				if strings.Contains(c, oldTok) || strings.Contains(c, newTok) {
					t.Errorf("a token leaks into the summary: %q", c)
				}
			}
		})
	}
}

// TestReloaderApplies drives a reloader with fakes: a good reload applies
// level, pool and token and updates what it compares against next time; a
// failing load changes nothing.
func TestReloaderApplies(t *testing.T) {
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	level := new(slog.LevelVar)
	cur := reloadBase()
	cur.APIToken = "old-token-0123456789"
	next := reloadBase()
	next.LogLevel, next.Pool, next.APIToken = slog.LevelDebug, []int{9000, 9001}, "new-token-0123456789"
	var loadErr error
	pool, api := &fakePooler{}, &fakeTokens{}
	r := &reloader{level: level, load: func() (*settings.Settings, error) {
		if loadErr != nil {
			return nil, loadErr
		}
		s := next
		return &s, nil
	}, pool: pool, api: api, log: log, cur: cur, token: cur.APIToken}

	r.reload("SIGHUP")
	if level.Level() != slog.LevelDebug || len(pool.calls) != 1 || pool.calls[0][0] != 9000 || len(api.set) != 1 || api.set[0] != next.APIToken {
		t.Fatalf("not applied: level %v pool %v tokens %d\n%s", level.Level(), pool.calls, len(api.set), logs)
	}
	if !strings.Contains(logs.String(), `msg="settings reloaded (SIGHUP)" changed="log-level info -> debug; ports 7000-7002 (3) -> 9000-9001 (2); api-token replaced`) {
		t.Fatalf("summary line:\n%s", logs)
	}
	r.reload("SIGHUP") // the same settings again: nothing to do
	if len(pool.calls) != 1 || len(api.set) != 1 || !strings.Contains(logs.String(), `changed=nothing`) {
		t.Fatalf("a second identical reload applied again: %v %d\n%s", pool.calls, len(api.set), logs)
	}
	loadErr = errors.New(`settings file /etc/c.conf is not valid JSON: boom`)
	next.LogLevel = slog.LevelError
	r.reload("SIGHUP")
	if level.Level() != slog.LevelDebug || len(pool.calls) != 1 || len(api.set) != 1 {
		t.Fatalf("a failed load changed something")
	}
	if !strings.Contains(logs.String(), "nothing changed") || !strings.Contains(logs.String(), "boom") {
		t.Fatalf("no clear error:\n%s", logs)
	}
}

type fakePooler struct{ calls [][]int }

func (f *fakePooler) SetPortPool(pool []int) ports.PoolChange {
	f.calls = append(f.calls, pool)
	return ports.PoolChange{Added: len(pool), Size: len(pool), Free: len(pool)}
}

type fakeTokens struct{ set []string }

func (f *fakeTokens) SetToken(tok string) { f.set = append(f.set, tok) }

// TestReloaderRereadsTokenFile: a reload reads api-token-file again, so
// rotating the file's content rotates the token; a token file that turns
// unsafe (group-writable) changes nothing.
func TestReloaderRereadsTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	write := func(tok string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("first-token-0123456789", 0o600)
	cur := reloadBase()
	cur.APITokenFile = file
	logs := &bytes.Buffer{}
	api := &fakeTokens{}
	r := &reloader{level: new(slog.LevelVar), load: func() (*settings.Settings, error) {
		s := reloadBase()
		s.APITokenFile = file
		return &s, nil
	}, pool: &fakePooler{}, api: api, log: slog.New(slog.NewTextHandler(logs, nil)), cur: cur, token: "first-token-0123456789"}

	r.reload("SIGHUP")
	if len(api.set) != 0 {
		t.Fatalf("an unchanged token file set the token: %d", len(api.set))
	}
	write("second-token-0123456789", 0o600)
	r.reload("SIGHUP")
	if len(api.set) != 1 || api.set[0] != "second-token-0123456789" {
		t.Fatalf("rotated token file: set %d tokens\n%s", len(api.set), logs)
	}
	write("third-token-0123456789", 0o620)
	r.reload("SIGHUP")
	if len(api.set) != 1 || r.token != "second-token-0123456789" {
		t.Fatalf("a group-writable token file was used")
	}
	if !strings.Contains(logs.String(), "writable by group or others") || !strings.Contains(logs.String(), "nothing changed") {
		t.Fatalf("no clear error:\n%s", logs)
	}
}
