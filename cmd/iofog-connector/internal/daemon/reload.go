package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/iofog/iofog-connector/api/control"
	"github.com/iofog/iofog-connector/core/ports"
	"github.com/iofog/iofog-connector/core/settings"
)

// SIGHUP (or `iofog-connector reload`, over the control socket) reloads
// the settings (file, environment and the start command's flags, with the
// usual precedence) and applies, without touching any
// mapping or relayed connection: log-level, the port pool (ports and
// exclude: new mappings take ports from the new pool, running mappings keep
// theirs), and the API token (api-token or api-token-file, read again).
// Settings that need a restart are named in a warning each and keep their
// running value. Settings that do not load (a bad file, an unreadable
// token file) change nothing.

// portPooler is the part of core.Manager a reload needs.
type portPooler interface {
	SetPortPool(pool []int) ports.PoolChange
}

// tokenSetter is the part of api.Server a reload needs.
type tokenSetter interface {
	SetToken(token string)
}

// reloader applies reloaded settings to the running daemon.
type reloader struct {
	mu sync.Mutex // one reload at a time; guards cur and token
	// hup delivers SIGHUP; nil means none.
	hup <-chan os.Signal
	// load reads the settings again; nil means reloads fail.
	load func() (*settings.Settings, error)
	// level is the level of the daemon's logger; nil means log-level is
	// not applied.
	level *slog.LevelVar
	pool  portPooler
	api   tokenSetter
	log   *slog.Logger
	cur   settings.Settings // the settings in force: start-up ones plus what reloads applied
	token string            // the API token in force
}

// run reloads on each SIGHUP until ctx is done.
func (r *reloader) run(ctx context.Context) {
	if r.hup == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.hup:
			_, _ = r.reload("SIGHUP") // logged
		}
	}
}

// reload reads the settings and applies what changed, or nothing; via
// names the trigger in the logs. Reloads run one at a time. It logs its
// outcome and returns it.
func (r *reloader) reload(via string) (control.ReloadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := control.ReloadResult{Changed: []string{}, NeedsRestart: []control.RestartKey{}}
	fail := func(err error) (control.ReloadResult, error) {
		r.log.Error("reload ("+via+"): the settings do not load; nothing changed, the daemon runs on as before", "err", err)
		return res, err
	}
	if r.load == nil {
		return fail(errors.New("reload: the daemon was started without a way to read its settings again"))
	}
	next, err := r.load()
	if err != nil {
		return fail(err)
	}
	token, warn, err := next.Token()
	if err != nil {
		return fail(err)
	}
	plan := planReload(&r.cur, next, r.token, token)
	for _, k := range plan.Restart {
		r.log.Warn("reload ("+via+"): this setting changed but needs a restart; it keeps its running value",
			"key", k.Key, "running", k.Running, "new", k.New)
	}
	if plan.Level != nil {
		if r.level != nil {
			r.level.Set(*plan.Level)
		}
		r.cur.LogLevel = *plan.Level
	}
	if plan.Pool != nil {
		c := r.pool.SetPortPool(plan.Pool)
		plan.Changes = append(plan.Changes, fmt.Sprintf("%d ports added, %d removed, %d free", c.Added, c.Removed, c.Free))
		if c.HeldOutside > 0 {
			plan.Changes = append(plan.Changes, fmt.Sprintf("%d ports outside the new pool stay with their mappings", c.HeldOutside))
		}
		r.cur.Pool = plan.Pool
	}
	if plan.Token != nil {
		if warn != "" {
			r.log.Warn(warn)
		}
		r.api.SetToken(*plan.Token)
		r.token = *plan.Token
		if r.token == "" {
			r.log.Warn("reload (" + via + "): the API token is removed: the API now answers requests without a token")
		}
	}
	r.cur.APIToken, r.cur.APITokenFile = next.APIToken, next.APITokenFile
	changed := "nothing"
	if len(plan.Changes) > 0 {
		changed = strings.Join(plan.Changes, "; ")
		res.Changed = plan.Changes
	}
	if len(plan.Restart) > 0 {
		res.NeedsRestart = plan.Restart
	}
	r.log.Info("settings reloaded ("+via+")", "changed", changed, "needs_restart", len(plan.Restart))
	return res, nil
}

// reloadPlan is what a reload applies.
type reloadPlan struct {
	Level   *slog.Level // nil: unchanged
	Pool    []int       // nil: unchanged
	Token   *string     // nil: unchanged; "" removes the token
	Changes []string    // what changes, for the summary line
	Restart []control.RestartKey
}

// restartKeys returns the settings a reload does not apply, with how to
// show them.
func restartKeys() []restartSetting {
	return []restartSetting{
		{"settings file", func(s *settings.Settings) string { return s.File }},
		{"dev", func(s *settings.Settings) string { return strconv.FormatBool(s.Dev) }},
		{"address", func(s *settings.Settings) string { return s.Address }},
		{"broker", func(s *settings.Settings) string { return strconv.Itoa(s.Broker) }},
		{"api-address", func(s *settings.Settings) string { return s.APIAddress }},
		{"bind", func(s *settings.Settings) string { return s.BindHost }},
		{"data-dir", func(s *settings.Settings) string { return s.DataDir }},
		{"transport", func(s *settings.Settings) string { return s.Transport }},
		{"plugins.dir", func(s *settings.Settings) string { return s.PluginDir }},
		{"public-wait-timeout", func(s *settings.Settings) string { return s.PublicWaitTimeout.String() }},
		{"public-max-waiting", func(s *settings.Settings) string { return strconv.Itoa(s.PublicMaxWaiting) }},
		{"public-max-waiting-per-source", func(s *settings.Settings) string { return strconv.Itoa(s.PublicMaxWaitingPerSource) }},
		{"tls-cert", func(s *settings.Settings) string { return s.TLSCert }},
		{"tls-key", func(s *settings.Settings) string { return s.TLSKey }},
		{"log-file", func(s *settings.Settings) string { return s.LogFile }},
		{"api-client-ca", func(s *settings.Settings) string { return s.APIClientCA }},
		{"plugins.checksums", func(s *settings.Settings) string { return jsonText(s.Transports.PluginChecksums) }},
		{"transports", func(s *settings.Settings) string {
			return jsonText(s.Transports.Configs) + jsonText(s.Transports.Plugins)
		}},
	}
}

// jsonText renders v for a restart warning (map keys sorted); "" for
// nothing.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" || string(b) == "{}" {
		return ""
	}
	return string(b)
}

type restartSetting struct {
	key string
	val func(*settings.Settings) string
}

// planReload compares the running settings (and token) with the reloaded
// ones. It never includes a token in Changes.
func planReload(cur, next *settings.Settings, curToken, nextToken string) reloadPlan {
	var p reloadPlan
	if next.LogLevel != cur.LogLevel {
		lvl := next.LogLevel
		p.Level = &lvl
		p.Changes = append(p.Changes, fmt.Sprintf("log-level %s -> %s", levelName(cur.LogLevel), levelName(lvl)))
	}
	if !slices.Equal(next.Pool, cur.Pool) {
		p.Pool = slices.Clone(next.Pool)
		p.Changes = append(p.Changes, fmt.Sprintf("ports %s (%d) -> %s (%d)", poolText(cur.Pool), len(cur.Pool), poolText(next.Pool), len(next.Pool)))
	}
	if nextToken != curToken {
		tok := nextToken
		p.Token = &tok
		switch {
		case curToken == "":
			p.Changes = append(p.Changes, "api-token set: the API requires it from now on")
		case nextToken == "":
			p.Changes = append(p.Changes, "api-token removed")
		default:
			p.Changes = append(p.Changes, "api-token replaced: the old token is refused from now on")
		}
	}
	for _, k := range restartKeys() {
		if a, b := k.val(cur), k.val(next); a != b {
			p.Restart = append(p.Restart, control.RestartKey{Key: k.key, Running: a, New: b})
		}
	}
	return p
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

// poolText renders a sorted pool as ranges: "7000-7099,7200". Beyond eight
// ranges it ends with ",...".
func poolText(pool []int) string {
	var parts []string
	for i := 0; i < len(pool); {
		j := i
		for j+1 < len(pool) && pool[j+1] == pool[j]+1 {
			j++
		}
		if len(parts) == 8 {
			parts = append(parts, "...")
			break
		}
		if i == j {
			parts = append(parts, strconv.Itoa(pool[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", pool[i], pool[j]))
		}
		i = j + 1
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
