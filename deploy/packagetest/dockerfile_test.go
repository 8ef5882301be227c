package packagetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository root (tests run in deploy/packagetest).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// instruction is one logical line of a Dockerfile.
type instruction struct {
	Line    int // first physical line
	Keyword string
	Args    string
}

var dockerKeywords = map[string]bool{
	"FROM": true, "RUN": true, "CMD": true, "LABEL": true, "MAINTAINER": true, "EXPOSE": true,
	"ENV": true, "ADD": true, "COPY": true, "ENTRYPOINT": true, "VOLUME": true, "USER": true,
	"WORKDIR": true, "ARG": true, "ONBUILD": true, "STOPSIGNAL": true, "HEALTHCHECK": true, "SHELL": true,
}

// parseDockerfile splits text into instructions: comment lines are
// dropped, a trailing backslash continues a line, and every instruction
// must start with a keyword Docker knows.
func parseDockerfile(text string) ([]instruction, error) {
	var (
		out  []instruction
		cur  strings.Builder
		from int
	)
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			from = i + 1
		} else if strings.HasPrefix(line, "#") {
			continue // comments inside a continued instruction
		}
		if line == "" {
			continue // an empty line inside a continued instruction
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		kw, args, _ := strings.Cut(cur.String(), " ")
		if !dockerKeywords[strings.ToUpper(kw)] {
			return nil, fmt.Errorf("Dockerfile:%d: %q is not a Dockerfile instruction", from, kw)
		}
		if kw != strings.ToUpper(kw) {
			return nil, fmt.Errorf("Dockerfile:%d: keyword %q is not upper case (house style)", from, kw)
		}
		out = append(out, instruction{Line: from, Keyword: kw, Args: strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	if strings.TrimSpace(cur.String()) != "" {
		return nil, errors.New("Dockerfile ends inside a continued line")
	}
	return out, nil
}

// stages splits instructions at FROM; global ARGs (before the first FROM)
// come back separately.
func stages(ins []instruction) (global []instruction, st [][]instruction) {
	for _, in := range ins {
		switch {
		case in.Keyword == "FROM":
			st = append(st, []instruction{in})
		case len(st) == 0:
			global = append(global, in)
		default:
			st[len(st)-1] = append(st[len(st)-1], in)
		}
	}
	return global, st
}

// execForm decodes a JSON-array (exec form) argument.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.Args), &v); err != nil || len(v) == 0 {
		t.Fatalf("Dockerfile:%d: %s %s is not a non-empty exec-form JSON array: %v", in.Line, in.Keyword, in.Args, err)
	}
	return v
}

// imageSettings is the settings file the image ships.
func imageSettings(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "container", "iofog-connector.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("deploy/container/iofog-connector.conf: %v", err)
	}
	return s
}

// dockerignored reports whether path (relative, slash-separated) is
// excluded from the build context by one of patterns (the subset of
// .dockerignore syntax the file uses: globs per path prefix).
func dockerignored(path string, patterns []string) bool {
	parts := strings.Split(path, "/")
	for _, p := range patterns {
		p = strings.TrimPrefix(p, "/")
		n := len(strings.Split(p, "/"))
		for i := n; i <= len(parts); i++ {
			if ok, _ := filepath.Match(p, strings.Join(parts[:i], "/")); ok {
				return true
			}
		}
		if ok, _ := filepath.Match(p, parts[len(parts)-1]); ok && !strings.Contains(p, "/") {
			return true
		}
	}
	return false
}

// TestDockerfile checks the Dockerfile where no container engine runs: it
// parses; a golang:1.26 stage builds a static binary (CGO_ENABLED=0) at the
// path the final stage runs; the final stage is scratch (or distroless
// static), runs as the non-root user 65532, keeps the settings' data dir
// as a volume, exposes the settings' API port and exactly their port range,
// and health-checks with the binary itself; every file the build takes
// from the context exists and is not excluded by .dockerignore.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ins, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatal(err)
	}
	global, st := stages(ins)
	if len(st) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final one", len(st))
	}
	args := map[string]string{}
	for _, in := range global {
		if in.Keyword == "ARG" {
			k, v, _ := strings.Cut(in.Args, "=")
			args[k] = v
		}
	}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return args[k] })
	}
	build, final := st[0], st[len(st)-1]
	if from := expand(build[0].Args); !strings.HasPrefix(from, "golang:1.26") {
		t.Errorf("build stage FROM %q, want golang:1.26", from)
	}
	fromFinal := strings.Fields(final[0].Args)[0]
	if fromFinal != "scratch" && !strings.HasPrefix(fromFinal, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %q, want scratch or distroless static", fromFinal)
	}
	var (
		buildOut string
		inCtx    []string // paths the build reads from the context
	)
	outFlag := regexp.MustCompile(`-o (\S+)`)
	for _, in := range build {
		switch in.Keyword {
		case "RUN":
			if strings.Contains(in.Args, "go build") {
				if !strings.Contains(in.Args, "CGO_ENABLED=0") {
					t.Errorf("Dockerfile:%d: go build without CGO_ENABLED=0: the binary would not be static", in.Line)
				}
				if m := outFlag.FindStringSubmatch(in.Args); m != nil {
					buildOut = m[1]
				}
			}
			for _, f := range regexp.MustCompile(`\bcp (deploy/\S+)`).FindAllStringSubmatch(in.Args, -1) {
				inCtx = append(inCtx, f[1])
			}
		case "COPY":
			f := strings.Fields(in.Args)
			if !strings.HasPrefix(f[0], "--from") {
				inCtx = append(inCtx, f[:len(f)-1]...)
			}
		}
	}
	settings := imageSettings(t)
	dataDir, _ := settings["data-dir"].(string)
	_, apiPort, _ := strings.Cut(settings["api-address"].(string), ":")
	pool := settings["ports"].([]any)
	var (
		user, volume, expose string
		entry, health        []string
	)
	for _, in := range final[1:] {
		switch in.Keyword {
		case "USER":
			user = in.Args
		case "VOLUME":
			volume = in.Args
		case "EXPOSE":
			expose += " " + in.Args
		case "ENTRYPOINT":
			entry = execForm(t, in)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(in.Args, " CMD ")
			if !ok {
				t.Fatalf("Dockerfile:%d: HEALTHCHECK without CMD", in.Line)
			}
			health = execForm(t, instruction{Line: in.Line, Keyword: "HEALTHCHECK CMD", Args: cmd})
		case "RUN":
			t.Errorf("Dockerfile:%d: RUN in the final stage: it has no shell", in.Line)
		}
	}
	if user != "65532:65532" && user != "65532" {
		t.Errorf("final stage USER %q, want 65532 (non-root)", user)
	}
	if dataDir == "" || !strings.Contains(volume, `"`+dataDir+`"`) {
		t.Errorf("VOLUME %s does not hold the data dir %q", volume, dataDir)
	}
	exposed := strings.Fields(expose)
	want := []string{apiPort + "/tcp"}
	for _, p := range pool {
		want = append(want, p.(string)+"/tcp")
	}
	if strings.Join(exposed, " ") != strings.Join(want, " ") {
		t.Errorf("EXPOSE %v, want the API port and the pool of the image's settings %v", exposed, want)
	}
	if len(entry) == 0 || buildOut != "/out"+entry[0] {
		t.Errorf("ENTRYPOINT %v is not the binary the build stage makes (%q under /out)", entry, buildOut)
	}
	if len(health) != 2 || len(entry) == 0 || health[0] != entry[0] || health[1] != "health" {
		t.Errorf("HEALTHCHECK CMD %v, want [%s health]", health, entry)
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(ignore), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, must := range []string{"go.mod", "go.sum", "cmd/iofog-connector/main.go", "core/manager.go", "deploy/container/iofog-connector.conf"} {
		inCtx = append(inCtx, must)
	}
	for _, p := range inCtx {
		if p == "." || p == "./" {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("the build reads %s from the context: %v", p, err)
		}
		if dockerignored(p, patterns) {
			t.Errorf("the build reads %s, but .dockerignore excludes it", p)
		}
	}
	for _, p := range []string{".git/HEAD", "bin/iofog-connector", "bin/tools/helm-v3/helm", "examples/expose-http/bin/x", "cmd/iofog-connector/x.test"} {
		if !dockerignored(p, patterns) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

// TestParseDockerfileRefuses: the instruction check fails on what Docker
// would refuse.
func TestParseDockerfileRefuses(t *testing.T) {
	ok, err := parseDockerfile("# c\nFROM scratch\nCOPY a \\\n  # inner comment\n  b\n")
	if err != nil || len(ok) != 2 || ok[1].Args != "a b" {
		t.Fatalf("continued line: %+v %v", ok, err)
	}
	for _, bad := range []string{"FROM scratch\nCOPIE a b\n", "FROM scratch\nRUN a \\\n", "from scratch\n"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
