package main

import (
	"bytes"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// module writes a temporary module example.com/m with the given files
// (path relative to the module root -> Go source).
func module(t *testing.T, files map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	dir := t.TempDir()
	write(t, dir, map[string]string{"go.mod": "module example.com/m\n\ngo 1.22\n"})
	write(t, dir, files)
	return dir
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if src == "" {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const stableV0 = `package sdk

import "example.com/m/sdk/kit"

type Transport interface {
	Name() string
	Dial(addr string) (Session, error)
}

type Session interface{ Close() error }

type Config struct {
	Addr string
	Max  int
}

func (c *Config) Validate() error { return nil }

const Version = 1

func New(name string, n int) Transport { return nil }

func Gone() {}

type Origin struct{}

func (Origin) String() string { return "" }

var _ = kit.Helper
`

const kitV0 = `package kit

func Helper(b []byte) int { return len(b) }

func Old() {}
`

var testClasses = map[string]Class{"sdk": Stable, "sdk/kit": Kit}

// check runs the tool on dir as make api-check does; write records the
// snapshot first.
func check(t *testing.T, dir string, write bool) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(Config{Dir: dir, Pattern: "./sdk/...", Classes: testClasses}, "sdk/api/v0.txt", write, &out)
	return out.String(), err
}

// TestCheckFailsOnBreakingChanges records a snapshot of a small module,
// then changes it in each way that breaks the stable API and checks that
// the check fails and names the old declaration.
func TestCheckFailsOnBreakingChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(string) string
		want string // the old line the check must report
	}{
		{"removed func", func(s string) string { return strings.Replace(s, "func Gone() {}\n", "", 1) },
			"- pkg sdk, func Gone()"},
		{"changed signature", func(s string) string {
			return strings.Replace(s, "func New(name string, n int)", "func New(name string, n int64)", 1)
		}, "- pkg sdk, func New(string, int) Transport"},
		{"method added to an interface", func(s string) string {
			return strings.Replace(s, "\tName() string\n", "\tName() string\n\tStats() int\n", 1)
		}, "- pkg sdk, type Transport interface { Dial, Name }"},
		{"field type changed", func(s string) string { return strings.Replace(s, "\tMax  int\n", "\tMax  uint\n", 1) },
			"- pkg sdk, type Config struct, Max int"},
		{"method moved to the pointer receiver", func(s string) string {
			return strings.Replace(s, "func (Origin) String()", "func (*Origin) String()", 1)
		}, "- pkg sdk, method (Origin) String() string"},
		{"type renamed", func(s string) string { return strings.ReplaceAll(s, "Session", "Link") },
			"- pkg sdk, type Session interface { Close }"},
		{"constant value changed", func(s string) string { return strings.Replace(s, "const Version = 1", "const Version = 2", 1) },
			"- pkg sdk, const Version untyped int = 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := module(t, map[string]string{"sdk/sdk.go": stableV0, "sdk/kit/kit.go": kitV0, "sdk/api/.keep": "x"})
			if out, err := check(t, dir, true); err != nil {
				t.Fatalf("api-snapshot: %v\n%s", err, out)
			}
			if out, err := check(t, dir, false); err != nil || !strings.Contains(out, "matches") {
				t.Fatalf("api-check right after api-snapshot: %v\n%s", err, out)
			}
			write(t, dir, map[string]string{"sdk/sdk.go": tc.edit(stableV0)})
			out, err := check(t, dir, false)
			if !errors.Is(err, errBreaking) {
				t.Fatalf("api-check = %v, want a failure for the stable API\n%s", err, out)
			}
			if !strings.Contains(out, tc.want+"\n") || !strings.Contains(out, "make api-snapshot") {
				t.Fatalf("api-check output lacks %q or how to update the snapshot:\n%s", tc.want, out)
			}
		})
	}
}

// TestCheckPassesCompatibleChanges: additions, renamed parameters and any
// change to a kit pass, and additions and kit changes are reported.
func TestCheckPassesCompatibleChanges(t *testing.T) {
	dir := module(t, map[string]string{"sdk/sdk.go": stableV0, "sdk/kit/kit.go": kitV0, "sdk/api/.keep": "x"})
	if out, err := check(t, dir, true); err != nil {
		t.Fatalf("api-snapshot: %v\n%s", err, out)
	}
	stable := strings.Replace(stableV0, "func New(name string, n int)", "func New(kind string, count int)", 1)
	stable = strings.Replace(stable, "func (Origin) String()", "func (o Origin) String()", 1)
	stable += "\nfunc Added(ctx string) {}\n\ntype Sealed interface{ a() }\n"
	stable = strings.Replace(stable, "\tMax  int\n", "\tMax  int\n\tMore bool\n", 1)
	write(t, dir, map[string]string{
		"sdk/sdk.go":     stable,
		"sdk/kit/kit.go": "package kit\n\nfunc Helper(b []byte, n int) int { return len(b) }\n",
	})
	out, err := check(t, dir, false)
	if err != nil {
		t.Fatalf("api-check = %v on compatible changes\n%s", err, out)
	}
	for _, want := range []string{
		"+ pkg sdk, func Added(string)",
		"+ pkg sdk, type Config struct, More bool",
		"+ pkg sdk, type Sealed interface, sealed",
		"- pkg sdk/kit, func Old()",
		"- pkg sdk/kit, func Helper([]byte) int",
		"+ pkg sdk/kit, func Helper([]byte, int) int",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("api-check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "func New") {
		t.Errorf("renaming parameters was reported:\n%s", out)
	}
}

// TestCheckRefusesUnclassifiedAndLeakedKits: a new sdk package must be
// classified, and a stable package may not expose a kit's type.
func TestCheckRefusesUnclassifiedAndLeakedKits(t *testing.T) {
	dir := module(t, map[string]string{"sdk/sdk.go": stableV0, "sdk/kit/kit.go": kitV0,
		"sdk/other/other.go":  "package other\n\nfunc F() {}\n",
		"sdk/internal/x/x.go": "package x\n\nfunc Hidden() {}\n"})
	out, err := check(t, dir, true)
	if err == nil || !strings.Contains(err.Error(), "sdk/other is not classified") {
		t.Fatalf("api-snapshot with an unclassified package = %v, want it refused\n%s", err, out)
	}
	if strings.Contains(err.Error(), "sdk/internal") {
		t.Fatalf("an internal package was asked to be classified: %v", err)
	}
	write(t, dir, map[string]string{"sdk/other/other.go": "",
		"sdk/kit/kit.go": kitV0 + "\ntype Pool struct{}\n",
		"sdk/sdk.go":     stableV0 + "\nfunc Leak() *kit.Pool { return nil }\n"})
	out, err = check(t, dir, true)
	if err == nil || !strings.Contains(err.Error(), "stable package sdk exposes a type of kit sdk/kit: func Leak() *sdk/kit.Pool") {
		t.Fatalf("api-snapshot with a kit type in the stable API = %v, want it refused\n%s", err, out)
	}
}

// TestCompareJudgesByRecordedClass: a line is judged by the class its
// package had in the snapshot, so demoting a stable package to a kit is a
// break and promoting a kit is not.
func TestCompareJudgesByRecordedClass(t *testing.T) {
	old := []string{"pkg a, stable", "pkg a, func F()", "pkg b, kit", "pkg b, func G()"}
	r := Compare(old, []string{"pkg a, kit", "pkg a, func F()", "pkg b, stable", "pkg b, func G()"})
	if len(r.Breaking) != 1 || r.Breaking[0] != "pkg a, stable" {
		t.Fatalf("demotion: Breaking = %q, want [pkg a, stable]", r.Breaking)
	}
	if len(r.KitChanges) != 1 || r.KitChanges[0] != "pkg b, kit" {
		t.Fatalf("promotion: KitChanges = %q, want [pkg b, kit]", r.KitChanges)
	}
	if r := Compare(old, old); len(r.Breaking)+len(r.KitChanges)+len(r.Added) != 0 {
		t.Fatalf("Compare(old, old) = %+v, want nothing", r)
	}
}

func TestMentions(t *testing.T) {
	for line, want := range map[string]bool{
		"func F() *sdk/pipe.Result":                   true,
		"func F(sdk/pipe.Options)":                    true,
		"type T struct, R []sdk/pipe.Result":          true,
		"type T struct, R map[string]sdk/pipe.Result": true,
		"type T struct, R sdk/pipeline.X":             false,
		"type T struct, R example/sdk/pipe.X":         false,
		"func F() sdk.Endpoint":                       false,
	} {
		if got := mentions(line, "sdk/pipe"); got != want {
			t.Errorf("mentions(%q, sdk/pipe) = %v, want %v", line, got, want)
		}
	}
}

// TestPackageDocsSayClass: each classified sdk package says in its doc
// comment what classes says it is, so the documentation and the check
// cannot drift apart.
func TestPackageDocsSayClass(t *testing.T) {
	root := filepath.Join("..", "..")
	for name, class := range classes {
		dir := filepath.Join(root, filepath.FromSlash(name))
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") },
			parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var doc strings.Builder
		for _, p := range pkgs {
			for _, f := range p.Files {
				if f.Doc != nil {
					doc.WriteString(f.Doc.Text())
				}
			}
		}
		text := strings.Join(strings.Fields(doc.String()), " ")
		want := map[Class]string{Stable: "stable contract", Kit: "is a kit"}[class]
		if name == "sdk" {
			want = "# Stability"
			text = doc.String()
		}
		if !strings.Contains(text, want) {
			t.Errorf("the package doc of %s (%s) does not say %q", name, class, want)
		}
		if class == Stable && strings.Contains(text, "is a kit") {
			t.Errorf("the package doc of stable %s calls it a kit", name)
		}
	}
}
