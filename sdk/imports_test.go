package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/iofog/iofog-connector"

// TestImportGraph enforces the dependency direction of the style guide:
// sdk/ is the bottom of the graph, core/ knows only sdk/, transports know
// sdk/ and never each other, api/ never reaches transports or plugins, and
// examples use sdk/ alone.
func TestImportGraph(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rules := []struct {
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
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		for _, r := range rules {
			if !under(pkg, r.pkg) {
				continue
			}
			checked++
			for _, imp := range fields[1:] {
				if !strings.HasPrefix(imp, module) {
					if stdlibOnly[pkg] && strings.Contains(strings.Split(imp, "/")[0], ".") {
						t.Errorf("%s imports %s: it may import only the standard library", pkg, imp)
					}
					continue
				}
				rel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
				ok := false
				for _, a := range r.allowed {
					ok = ok || under(rel, a)
				}
				if !ok {
					t.Errorf("%s imports %s: %s may import only %v", pkg, rel, r.pkg, r.allowed)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package was checked; is go list output empty?")
	}
}

// stdlibOnly lists the sdk packages that third parties import for the
// contract itself; they bring no dependency along.
var stdlibOnly = map[string]bool{"sdk": true, "sdk/pipe": true, "sdk/muxkit": true, "sdk/streamkit": true, "sdk/proxyproto": true}

func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}
