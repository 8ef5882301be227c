package main

// The Debian package (issue 11), built with `make deb`, installed on this
// machine with dpkg, run as its systemd unit runs it, upgraded and purged.
// Root only. Helpers are prefixed pkg (shared ones in pkg_e2e_test.go).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pkgRepoRoot is the repository root (tests run in cmd/iofog-connector).
func pkgRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "debian", "nfpm.yaml")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// pkgRequireRoot skips unless the test runs as root on a Debian system.
func pkgRequireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (dpkg -i, a system user, chroot); CI runs as root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// pkgMake runs `make target` in the repository with VERSION=version,
// PKG_DIR=dir and PKG_BIN=dir/iofog-connector, and returns the static
// binary's path and the .deb made, if any.
func pkgMake(t *testing.T, dir, version, target string) (bin, deb string) {
	t.Helper()
	bin = filepath.Join(dir, "iofog-connector")
	if target == "" {
		target = bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", pkgRepoRoot(t), target,
		"VERSION="+version, "PKG_DIR="+dir, "PKG_BIN="+bin)
	// Not the jobserver of an enclosing `make test`.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s VERSION=%s: %v\n%s", target, version, err, out)
	}
	t.Logf("make %s VERSION=%s: %s", filepath.Base(target), version, time.Since(start).Round(time.Millisecond))
	if debs, _ := filepath.Glob(filepath.Join(dir, "*.deb")); len(debs) == 1 {
		deb = debs[0]
	}
	return bin, deb
}

const (
	pkgName     = "iofog-connector"
	pkgVersion1 = "1.0.0-pkgtest1"
	pkgVersion2 = "1.0.0-pkgtest2"
	pkgConfDir  = "/etc/iofog-connector"
	pkgDataDir  = "/var/lib/iofog-connector"
	pkgLogDir   = "/var/log/iofog-connector"
	pkgUnit     = "/lib/systemd/system/iofog-connector.service"
	// pkgLegacyID marks the legacy configs.json this test writes, so that
	// one left by an interrupted run can be told from an operator's.
	pkgLegacyID = "pkgtest-legacy-mapping"
)

// pkgDpkg runs dpkg with args and fails the test on an error.
func pkgDpkg(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dpkg", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// pkgInstalledVersion returns the installed version of the package, or "".
func pkgInstalledVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}", pkgName).Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[1] == "not-installed" {
		return ""
	}
	return f[0]
}

// pkgGuardMachine skips when this machine has an iofog-connector the test
// did not make (it would be replaced and purged) and clears what an
// interrupted run of this test left.
func pkgGuardMachine(t *testing.T) {
	t.Helper()
	if v := pkgInstalledVersion(); v != "" {
		if !strings.Contains(v, "pkgtest") {
			t.Skipf("%s %s is installed on this machine; the test will not replace it", pkgName, v)
		}
		pkgDpkg(t, "--purge", pkgName)
	}
	legacy := filepath.Join(pkgConfDir, "configs.json")
	if b, err := os.ReadFile(legacy); err == nil && bytes.Contains(b, []byte(pkgLegacyID)) {
		os.Remove(legacy)
		os.Remove(pkgConfDir)
	}
	for _, p := range []string{pkgConfDir, pkgDataDir, pkgLogDir} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists and no package owns it; the test will not touch it", p)
		}
	}
	if _, err := user.Lookup(pkgName); err == nil {
		t.Skipf("user %s exists and no package owns it; the test will not touch it", pkgName)
	}
}

// pkgCheckFile requires path to be of mode and owner.
func pkgCheckFile(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&(os.ModeType|os.ModePerm) != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Fatalf("%s: mode %v owner %d:%d, want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// pkgUnitKeys reads the [Service] and [Unit] settings of a unit file.
func pkgUnitKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=VALUE", path, line)
		}
		keys[k] = v
	}
	return keys
}

// pkgIDs returns the uid and gid of the package's user.
func pkgIDs(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(pkgName)
	if err != nil {
		t.Fatalf("user %s: %v", pkgName, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// pkgCheckInstall checks what dpkg -i put on the machine.
func pkgCheckInstall(t *testing.T) {
	t.Helper()
	uid, gid := pkgIDs(t)
	if uid >= 1000 {
		t.Fatalf("user %s has uid %d: not a system user", pkgName, uid)
	}
	passwd, _ := os.ReadFile("/etc/passwd")
	if !pkgLineMatches(string(passwd), pkgName+":", ":/usr/sbin/nologin") {
		t.Fatalf("user %s may log in", pkgName)
	}
	pkgCheckFile(t, "/usr/bin/iofog-connector", 0o755, 0, 0)
	pkgCheckFile(t, pkgConfDir, os.ModeDir|0o755, 0, 0)
	pkgCheckFile(t, pkgConfDir+"/iofog-connector.conf", 0o644, 0, 0)
	pkgCheckFile(t, pkgUnit, 0o644, 0, 0)
	pkgCheckFile(t, pkgDataDir, os.ModeDir|0o750, uid, gid)
	pkgCheckFile(t, pkgLogDir, os.ModeDir|0o750, uid, gid)
	pkgCheckFile(t, pkgConfDir+"/server-cert.pem", 0o644, 0, 0)
	pkgCheckFile(t, pkgConfDir+"/server-key.pem", 0o640, 0, gid)
	if _, err := tls.LoadX509KeyPair(pkgConfDir+"/server-cert.pem", pkgConfDir+"/server-key.pem"); err != nil {
		t.Fatalf("generated identity: %v", err)
	}

	// The conffile is the repository's, registered as a conffile.
	want, err := os.ReadFile(filepath.Join(pkgRepoRoot(t), "deploy", "debian", "iofog-connector.conf"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(pkgConfDir + "/iofog-connector.conf")
	if !bytes.Equal(got, want) {
		t.Fatalf("installed settings file differs from deploy/debian/iofog-connector.conf")
	}
	var conf map[string]any
	if err := json.Unmarshal(got, &conf); err != nil {
		t.Fatalf("settings file: %v", err)
	}
	if conf["dev"] != false || conf["data-dir"] != pkgDataDir || conf["broker"] == nil || conf["address"] == nil || conf["ports"] == nil {
		t.Fatalf("settings file lacks the legacy defaults: %v", conf)
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Conffiles}", pkgName).Output()
	if err != nil || !strings.Contains(string(out), pkgConfDir+"/iofog-connector.conf") {
		t.Fatalf("conffiles: %q %v", out, err)
	}

	// The unit: what the issue asks of it.
	u := pkgUnitKeys(t, pkgUnit)
	for k, v := range map[string]string{
		"Type": "notify", "Restart": "on-failure", "User": pkgName, "Group": pkgName,
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
		"StateDirectory": pkgName, "LogsDirectory": pkgName,
		"AmbientCapabilities": "CAP_NET_BIND_SERVICE",
	} {
		if u[k] != v {
			t.Errorf("unit: %s=%q, want %q", k, u[k], v)
		}
	}
	// Two listeners per mapping plus 60 links each (the Controller's
	// public body): 10,000 mappings need over 620,000 descriptors.
	if n, err := strconv.Atoi(u["LimitNOFILE"]); err != nil || n < 10000*62 {
		t.Errorf("unit: LimitNOFILE=%q is not enough for 10,000 mappings", u["LimitNOFILE"])
	}
	if !strings.HasPrefix(u["ExecReload"], "/usr/bin/iofog-connector reload ") || !strings.Contains(u["ExecReload"], " --data-dir "+pkgDataDir) {
		t.Errorf("unit: ExecReload=%q, want iofog-connector reload on the data dir", u["ExecReload"])
	}
	if _, err := exec.LookPath("systemctl"); err == nil {
		if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/" + pkgName + ".service"); err != nil {
			t.Errorf("service not enabled on first install: %v", err)
		}
	}
}

// pkgLineMatches reports whether a line of text starts with prefix and ends
// with suffix.
func pkgLineMatches(text, prefix, suffix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

// pkgVerifyUnit runs systemd-analyze verify on the installed unit, when
// the machine has it (apt package systemd).
func pkgVerifyUnit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Logf("systemd-analyze not found (apt package systemd): the unit is not verified")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemd-analyze", "verify", pkgUnit).CombinedOutput()
	if err != nil || strings.Contains(string(out), pkgName) {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", pkgUnit, err, out)
	}
}

// pkgUnitRun is the daemon run as the unit runs it.
type pkgUnitRun struct {
	proc   *e2eProc
	notify <-chan string
	api    string
	client *http.Client
	tls    *tls.Config
	d      *e2eDaemon // for the shared API helpers (API, Client)
	// metrics is the daemon's /metrics URL (metrics-address moved to a
	// free loopback port, as an operator turns it on).
	metrics string
}

// pkgStartAsUnit starts ExecStart of the installed unit as the unit's
// user, with its ambient capability, no_new_privs and (as far as this
// machine's hard limit allows) its LimitNOFILE, with $NOTIFY_SOCKET, and
// with the API, the bind address and the port pool moved to loopback by
// IOFOG_CONNECTOR_* variables; it waits for READY=1.
func pkgStartAsUnit(t *testing.T, apiAddr string, lo, hi int) *pkgUnitRun {
	t.Helper()
	u := pkgUnitKeys(t, pkgUnit)
	args := strings.Fields(u["ExecStart"])
	want := []string{"/usr/bin/iofog-connector", "start", "--config", pkgConfDir + "/iofog-connector.conf", "--data-dir", pkgDataDir}
	if strings.Join(args, " ") != strings.Join(want, " ") {
		t.Fatalf("ExecStart=%q, want %q", u["ExecStart"], strings.Join(want, " "))
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	nofile, _ := strconv.ParseUint(u["LimitNOFILE"], 10, 64)
	if nofile > rl.Max {
		t.Logf("LimitNOFILE=%d is above this machine's hard limit %d; running with %d", nofile, rl.Max, rl.Max)
		nofile = rl.Max
	}
	sock, notify := pkgNotifySocket(t, pkgTempDir(t))
	wrap := []string{
		"--nofile=" + strconv.FormatUint(nofile, 10),
		"setpriv", "--reuid=" + u["User"], "--regid=" + u["Group"], "--init-groups",
		"--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "--no-new-privs", "--",
	}
	cmd := exec.Command("prlimit", append(wrap, args...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock,
		"IOFOG_CONNECTOR_API_ADDRESS="+apiAddr, "IOFOG_CONNECTOR_BIND=127.0.0.1",
		fmt.Sprintf("IOFOG_CONNECTOR_PORTS=%d-%d", lo, hi))
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(e2eFreePort(t)))
	cmd.Env = append(cmd.Env, "IOFOG_CONNECTOR_METRICS_ADDRESS="+metricsAddr)
	cmd.Dir = "/"
	r := &pkgUnitRun{proc: e2eStartCmd(t, cmd), notify: notify, metrics: "http://" + metricsAddr + "/metrics"}
	select {
	case msg := <-notify:
		if !strings.Contains(msg, "READY=1") {
			t.Fatalf("first notification %q is not READY=1", msg)
		}
	case <-r.proc.done:
		t.Fatalf("daemon exited during start-up: %v\n%s", r.proc.err, r.proc.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no READY=1 within 30 s:\n%s", r.proc.out.String())
	}
	certPEM, err := os.ReadFile(pkgConfDir + "/server-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	r.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	r.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: r.tls}}
	r.api = "https://" + apiAddr
	r.d = &e2eDaemon{t: t, API: r.api, Client: r.client}
	return r
}

// pkgTempDir is a temporary directory the package's user can enter.
func pkgTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "iofog-pkg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// pkgLowPort returns a free loopback port below 1024 (the unit's ambient
// capability must let the service user bind it), or a free high port.
func pkgLowPort(t *testing.T) int {
	t.Helper()
	for p := 1023; p >= 1000; p-- {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Logf("no free port in 1000-1023 on loopback: the API uses a high port")
	return e2eFreePort(t)
}

// pkgProcStatus returns the fields of /proc/PID/status.
func pkgProcStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestPkgDebInstall builds the Debian package with `make deb`, installs it
// with dpkg over what a legacy install leaves (a root-only configs.json in
// /etc/iofog-connector), checks files, permissions, the user, the
// generated identity and the unit (systemd-analyze verify), runs the
// binary as the unit would (its user, capability, no_new_privs and
// arguments, on loopback): the legacy mappings are adopted, a mapping
// added over the API relays a public pipe byte-exact over TLS with our
// agent; then upgrades (data, identity and an edited conffile kept,
// mappings restored) and purges (data, logs, identity and user gone, the
// legacy file left). Root only; it leaves the machine as it found it.
func TestPkgDebInstall(t *testing.T) {
	pkgRequireRoot(t, "dpkg", "dpkg-query", "make", "setpriv", "prlimit", "runuser")
	e2eWatchdog(t, 9*time.Minute) // make installs nfpm first if `make test` did not
	pkgGuardMachine(t)
	started := time.Now()
	_, deb1 := pkgMake(t, t.TempDir(), pkgVersion1, "deb")
	_, deb2 := pkgMake(t, t.TempDir(), pkgVersion2, "deb")
	if deb1 == "" || deb2 == "" || !strings.HasSuffix(deb1, "_1.0.0~pkgtest1_"+pkgDebArch(t)+".deb") {
		t.Fatalf("make deb made %q and %q", deb1, deb2)
	}
	t.Cleanup(func() {
		if pkgInstalledVersion() != "" {
			exec.Command("dpkg", "--purge", pkgName).Run()
		}
		os.Remove(filepath.Join(pkgConfDir, "configs.json"))
		os.Remove(pkgConfDir)
	})

	// What the legacy package leaves: its mappings file, root only.
	lo, hi := e2ePortRange(t, 10)
	legacy := fmt.Sprintf(`{"mappings":[{"id":%q,"port1":%d,"port2":%d,"maxconnectionsport1":60,"maxconnectionsport2":0,`+
		`"passcodeport1":"pkgtest-passcode-1","passcodeport2":"","heartbeatabsencethresholdport1":200000,"heartbeatabsencethresholdport2":0}]}`,
		pkgLegacyID, lo, lo+1)
	if err := os.MkdirAll(pkgConfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	legacyPath := filepath.Join(pkgConfDir, "configs.json")
	if err := os.WriteFile(legacyPath, []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}

	pkgDpkg(t, "-i", deb1)
	if v := pkgInstalledVersion(); v != "1.0.0~pkgtest1" {
		t.Fatalf("installed version %q", v)
	}
	pkgCheckInstall(t)
	_, gid := pkgIDs(t)
	pkgCheckFile(t, legacyPath, 0o640, 0, gid) // made readable by the service's group
	pkgVerifyUnit(t)
	if out, err := exec.Command("/usr/bin/iofog-connector", "version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "iofog-connector "+pkgVersion1 {
		t.Fatalf("iofog-connector version: %q %v", out, err)
	}

	// Run it as the unit does.
	apiAddr := "127.0.0.1:" + strconv.Itoa(pkgLowPort(t))
	r := pkgStartAsUnit(t, apiAddr, lo, hi)
	ps := pkgProcStatus(t, r.proc.cmd.Process.Pid)
	if uid, _ := pkgIDs(t); !strings.HasPrefix(ps["Uid"], strconv.Itoa(uid)+"\t") || ps["NoNewPrivs"] != "1" {
		t.Fatalf("daemon runs as Uid %q NoNewPrivs %q", ps["Uid"], ps["NoNewPrivs"])
	}
	if code, body := pkgGet(t, r.client, r.api, "/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %v", code, body)
	}
	if code, body := pkgGet(t, r.client, r.api, "/readyz"); code != 200 || body["mappings"] != float64(1) {
		t.Fatalf("/readyz after adopting one legacy mapping: %d %v", code, body)
	}
	if !strings.Contains(r.proc.out.String(), "legacy mappings file adopted") {
		t.Fatalf("no adoption logged:\n%s", r.proc.out.String())
	}
	if ok, err := pkgLegacyAuth(net.JoinHostPort("127.0.0.1", strconv.Itoa(lo)), "pkgtest-passcode-1", r.tls); err != nil || !ok {
		t.Fatalf("adopted legacy mapping with its passcode: authorized=%v err=%v", ok, err)
	}
	m := r.d.AddMapping(t, e2ePublicBody)
	agent := exec.Command("/usr/bin/iofog-connector", append(pkgAgentArgs(m.Port1, m.Passcode1, e2eEcho(t)), "--ca", pkgConfDir+"/server-cert.pem")...)
	e2eStartCmd(t, agent)
	pkgWaitLinks(t, r.d, m.ID)
	pkgRelay(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port2)), r.tls, 256<<10)
	out, err := exec.Command("/usr/bin/iofog-connector", "status", "--config", pkgConfDir+"/iofog-connector.conf").CombinedOutput()
	if err != nil || !strings.Contains(string(out), m.ID) || !strings.Contains(string(out), pkgLegacyID) {
		t.Fatalf("iofog-connector status (control socket in the data dir): %v\n%s", err, out)
	}
	// The operator's view: mapping ls lists what the Controller added, and
	// /metrics shows the traffic.
	out, err = exec.Command("/usr/bin/iofog-connector", "mapping", "ls", "--config", pkgConfDir+"/iofog-connector.conf").CombinedOutput()
	if err != nil || !strings.Contains(string(out), m.ID) || !strings.Contains(string(out), pkgLegacyID) {
		t.Fatalf("iofog-connector mapping ls: %v\n%s", err, out)
	}
	pkgCheckMetricsBytes(t, r.metrics, m.ID, 256<<10)
	r.proc.stop(t)
	pkgWaitNotify(t, r.notify, "STOPPING=1", 5*time.Second)

	// Upgrade: data, identity and the operator's edit of the conffile stay.
	stored, err := os.ReadFile(filepath.Join(pkgDataDir, "configs.json"))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := os.ReadFile(pkgConfDir + "/server-cert.pem")
	confPath := pkgConfDir + "/iofog-connector.conf"
	conf, _ := os.ReadFile(confPath)
	edited := bytes.Replace(conf, []byte(`"dev": false,`), []byte(`"dev": false, "log-level": "debug",`), 1)
	if bytes.Equal(edited, conf) {
		t.Fatalf("could not edit the settings file:\n%s", conf)
	}
	if err := os.WriteFile(confPath, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	pkgDpkg(t, "-i", deb2)
	if v := pkgInstalledVersion(); v != "1.0.0~pkgtest2" {
		t.Fatalf("version after upgrade %q", v)
	}
	for path, want := range map[string][]byte{filepath.Join(pkgDataDir, "configs.json"): stored, pkgConfDir + "/server-cert.pem": cert, confPath: edited} {
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s changed by the upgrade (%v)", path, err)
		}
	}
	if out, _ := exec.Command("/usr/bin/iofog-connector", "version").CombinedOutput(); strings.TrimSpace(string(out)) != "iofog-connector "+pkgVersion2 {
		t.Fatalf("version after upgrade: %q", out)
	}
	r = pkgStartAsUnit(t, apiAddr, lo, hi)
	if code, body := pkgGet(t, r.client, r.api, "/readyz"); code != 200 || body["mappings"] != float64(2) {
		t.Fatalf("/readyz after the upgrade: %d %v, want both mappings", code, body)
	}
	if strings.Contains(r.proc.out.String(), "legacy mappings file adopted") {
		t.Fatal("legacy file adopted again over the data dir's store")
	}
	r.proc.stop(t)

	// Purge: everything of the package goes; the legacy file stays.
	pkgDpkg(t, "--purge", pkgName)
	for _, p := range []string{"/usr/bin/iofog-connector", pkgUnit, pkgDataDir, pkgLogDir, confPath,
		pkgConfDir + "/server-cert.pem", pkgConfDir + "/server-key.pem", pkgConfDir + "/.generated-identity.sha256"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after purge (%v)", p, err)
		}
	}
	if _, err := user.Lookup(pkgName); err == nil {
		t.Errorf("user %s still there after purge", pkgName)
	}
	if b, err := os.ReadFile(legacyPath); err != nil || string(b) != legacy {
		t.Errorf("purge touched the legacy mappings file: %v", err)
	}
	t.Logf("build, install, run, upgrade, run, purge: %s", time.Since(started).Round(time.Millisecond))
}

// pkgDebArch is the Debian architecture of GOARCH (what nfpm names).
func pkgDebArch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// pkgCheckMetricsBytes scrapes url and checks that mapping id relayed at
// least n bytes up.
func pkgCheckMetricsBytes(t *testing.T, url, id string, n int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %d %v", url, resp.StatusCode, err)
	}
	prefix := `iofog_connector_relayed_bytes_total{direction="up",mapping_id="` + id + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			got, err := strconv.ParseFloat(v, 64)
			if err != nil || got < float64(n) {
				t.Fatalf("%s%s: want at least %d", prefix, v, n)
			}
			return
		}
	}
	t.Fatalf("no %q line in /metrics:\n%.2000s", prefix, body)
}
