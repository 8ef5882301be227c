package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/iofog/iofog-connector"

// rules is the dependency direction of the style guide: sdk/ is the bottom
// of the graph, core/ knows only sdk/, transports know sdk/ and never each
// other, api/ never reaches transports or plugins, and examples use sdk/
// alone. A rule governs a package's imports and its tests' imports alike.
var rules = []struct {
	pkg     string   // package prefix (within the module) the rule governs
	allowed []string // module-internal prefixes it may import
}{
	{"sdk", []string{"sdk"}},
	{"core", []string{"core", "sdk"}},
	{"transports/tcp", []string{"transports/tcp", "sdk"}},
	{"transports/yamux", []string{"transports/yamux", "sdk"}},
	{"transports/quic", []string{"transports/quic", "sdk"}},
	{"plugins", []string{"plugins", "sdk"}},
	{"api", []string{"api", "core", "sdk"}},
	{"examples", []string{"examples", "sdk"}},
}

// testExceptions are the imports that only a package's tests may make
// outside its rule, each with the reason. The package itself (what ships)
// is still held to the rule.
var testExceptions = map[[2]string]string{
	{"transports/tcp", "core/relay"}: "the tcp legacy-link tests (live_test.go) join two private endpoints " +
		"with the core's real relay (relay.ServePrivate), because what they check (a dead or frozen " +
		"legacy agent's link is released while its relay waits or splices) only shows under the relay " +
		"the daemon runs; a stand-in relay would test the stand-in",
}

// stdlibOnly lists the sdk packages a third-party transport is built from
// (the contract and the kits it needs, see "Stability" in package sdk);
// they bring no dependency along. Their tests may import more (a test's
// imports do not reach an importer).
var stdlibOnly = map[string]bool{"sdk": true, "sdk/pipe": true, "sdk/muxkit": true, "sdk/streamkit": true, "sdk/proxyproto": true}

// TestImportGraph enforces rules on every package of the module, on what
// it imports and on what its tests (in-package and _test package) import.
func TestImportGraph(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	// One line per package and kind of import: "pkg kind imp imp ...".
	const format = `{{.ImportPath}} import{{range .Imports}} {{.}}{{end}}
{{.ImportPath}} test{{range .TestImports}} {{.}}{{end}}
{{.ImportPath}} xtest{{range .XTestImports}} {{.}}{{end}}`
	out, err := exec.Command("go", "list", "-f", format, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked, checkedTests := 0, 0
	used := map[[2]string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		pkg, kind, imports := rel(fields[0]), fields[1], fields[2:]
		for _, r := range rules {
			if !under(pkg, r.pkg) {
				continue
			}
			if kind == "import" {
				checked++
			} else {
				checkedTests += len(imports)
			}
			for _, imp := range imports {
				if !strings.HasPrefix(imp, module) {
					if kind == "import" && stdlibOnly[pkg] && strings.Contains(strings.Split(imp, "/")[0], ".") {
						t.Errorf("%s imports %s: it may import only the standard library", pkg, imp)
					}
					continue
				}
				dep := rel(imp)
				ok := false
				for _, a := range r.allowed {
					ok = ok || under(dep, a)
				}
				if !ok && kind != "import" {
					key := [2]string{r.pkg, dep}
					if _, allowed := testExceptions[key]; allowed {
						used[key] = true
						continue
					}
				}
				if !ok {
					what := pkg
					if kind != "import" {
						what += " (tests)"
					}
					t.Errorf("%s imports %s: %s may import only %v", what, dep, r.pkg, r.allowed)
				}
			}
		}
	}
	if checked == 0 || checkedTests == 0 {
		t.Fatalf("checked %d packages and %d test imports; is go list output empty?", checked, checkedTests)
	}
	for key, reason := range testExceptions {
		if !used[key] {
			t.Errorf("test exception %s -> %s (%s) is no longer needed: remove it", key[0], key[1], reason)
		}
	}
}

// rel is an import path relative to the module ("sdk/pipe").
func rel(imp string) string {
	return strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
}

func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}
