package main

// The container image (issue 11) without a container engine: the static
// binary runs in an empty root as the Dockerfile runs it. Root only.
// Helpers are prefixed pkg (shared ones in pkg_e2e_test.go).

import (
	"context"
	"crypto/tls"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pkgImage is what the final stage of the Dockerfile says about running
// the image.
type pkgImage struct {
	User        string
	Entrypoint  []string
	Cmd         []string
	HealthCheck []string
}

// pkgReadImage reads the final stage's USER, ENTRYPOINT, CMD and
// HEALTHCHECK CMD (exec form) from the Dockerfile.
func pkgReadImage(t *testing.T) pkgImage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pkgRepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var img pkgImage
	execForm := func(s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &v); err != nil {
			t.Fatalf("Dockerfile: %q is not an exec-form JSON array: %v", s, err)
		}
		return v
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		kw, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(kw) {
		case "FROM":
			img = pkgImage{} // a new stage
		case "USER":
			img.User = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			img.Entrypoint = execForm(rest)
		case "CMD":
			img.Cmd = execForm(rest)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, " CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK %q has no CMD", rest)
			}
			img.HealthCheck = execForm(cmd)
		}
	}
	return img
}

// TestPkgImageRootfs runs the container image's static binary the way the
// image does (ENTRYPOINT and CMD of the Dockerfile, its USER, its settings
// file) in an empty root holding only the binary, the settings, a TLS
// identity and the data dir: it serves /healthz and /readyz over HTTPS,
// and the image's HEALTHCHECK command succeeds while it runs and fails
// once it stopped. No container engine is needed. Root only (chroot).
func TestPkgImageRootfs(t *testing.T) {
	pkgRequireRoot(t, "make")
	e2eWatchdog(t, 6*time.Minute)
	img := pkgReadImage(t)
	if img.User != "65532:65532" || len(img.Entrypoint) == 0 || len(img.HealthCheck) < 2 {
		t.Fatalf("Dockerfile final stage: %+v", img)
	}
	bin, _ := pkgMake(t, t.TempDir(), pkgVersion1, "")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s has a program interpreter: not static", bin)
		}
	}
	f.Close()
	if len(libs) != 0 {
		t.Fatalf("%s needs %v: not static", bin, libs)
	}

	root := filepath.Join(pkgTempDir(t), "root")
	uid, gid := 65532, 65532
	mk := func(path string, mode os.FileMode, owner int, data []byte) {
		t.Helper()
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if data == nil {
			err = os.Mkdir(full, mode)
		} else {
			err = os.WriteFile(full, data, mode)
		}
		if err == nil {
			err = os.Chmod(full, mode)
		}
		if err == nil {
			err = os.Chown(full, owner, owner)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	mk(img.Entrypoint[0], 0o755, 0, read(bin))
	mk("/etc/iofog-connector/iofog-connector.conf", 0o644, 0, read(filepath.Join(pkgRepoRoot(t), "deploy", "container", "iofog-connector.conf")))
	certDir := t.TempDir()
	_, pool := e2eWriteCert(t, certDir)
	// Mounted into the container readable by its user.
	mk("/etc/iofog-connector/server-cert.pem", 0o644, 0, read(filepath.Join(certDir, "server-cert.pem")))
	mk("/etc/iofog-connector/server-key.pem", 0o400, uid, read(filepath.Join(certDir, "server-key.pem")))
	mk("/var/lib/iofog-connector", 0o750, uid, nil)
	mk("/tmp", 0o777|os.ModeSticky, 0, nil)

	// Only the addresses move to loopback; everything else is the image's.
	lo, hi := e2ePortRange(t, 6)
	apiAddr := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	env := []string{"PATH=/usr/bin", "IOFOG_CONNECTOR_API_ADDRESS=" + apiAddr, "IOFOG_CONNECTOR_BIND=127.0.0.1",
		fmt.Sprintf("IOFOG_CONNECTOR_PORTS=%d-%d", lo, hi)}
	inRoot := func(ctx context.Context, args []string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = env
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		return cmd
	}
	healthcheck := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := inRoot(ctx, img.HealthCheck).CombinedOutput()
		return string(out), err
	}

	p := e2eStartCmd(t, inRoot(context.Background(), append(append([]string{}, img.Entrypoint...), img.Cmd...)))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("https://" + apiAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if !p.alive() || time.Now().After(deadline) {
			t.Fatalf("no /healthz from the daemon in the empty root (%v):\n%s", err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := pkgGet(t, client, "https://"+apiAddr, "/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %v", code, body)
	}
	if out, err := healthcheck(); err != nil || !strings.Contains(out, `"ok"`) {
		t.Fatalf("HEALTHCHECK %v in the running image: %v: %s", img.HealthCheck, err, out)
	}
	p.stop(t)
	if out, err := healthcheck(); err == nil {
		t.Fatalf("HEALTHCHECK succeeded with the daemon stopped: %s", out)
	}
}
