// Command apicheck guards the compatibility promise of the sdk packages:
// it renders their exported API, one declaration a line, and compares it
// with a checked-in snapshot of the last release (sdk/api/v0.txt).
//
//	go run ./internal/apicheck          # make api-check: compare, exit 1 on a break
//	go run ./internal/apicheck -write   # make api-snapshot: record the API as the baseline
//
// Each sdk package is classified in [classes]: the stable contract, whose
// exported names change only compatibly, or a kit, exported for transport
// authors without that promise. A line of the snapshot that is gone from a
// stable package (a name removed, a signature or type changed, a method
// added to an interface others implement, a constant's value changed, a
// stable package demoted to a kit) fails the check with a diff; the same
// in a kit is reported and passes; a new line passes and is reported. A
// stable package's API may not mention a kit's types (it would carry the
// kit's changes into the promise), and an sdk package that is not
// classified fails the check. Internal packages are not part of the API.
//
// The API is read from the compiler's export data (go list -export), so
// the check sees exactly what importers compile against; it needs the go
// tool and the module's dependencies in the module cache, not the network.
// The format follows the Go project's api/*.txt files.
//
// It is a main package under internal/ because it is a development tool
// of this repository only: no importable API of its own, nothing shipped,
// and `go run` needs no install step.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
)

// Class is how much a package promises.
type Class string

const (
	// Stable packages are the contract: exported names change only in a
	// backwards-compatible way.
	Stable Class = "stable"
	// Kit packages are exported building blocks with no compatibility
	// promise: they may change in any release (and the change is listed
	// in the release notes).
	Kit Class = "kit"
)

// classes classifies every non-internal package under sdk/, by path
// relative to the module. Keep it in step with sdk/doc.go and each
// package's doc comment.
var classes = map[string]Class{
	"sdk":                   Stable,
	"sdk/agent":             Stable,
	"sdk/plugin":            Stable,
	"sdk/proxyproto":        Stable,
	"sdk/transporttest":     Stable,
	"sdk/admission":         Kit,
	"sdk/muxkit":            Kit,
	"sdk/pipe":              Kit,
	"sdk/profiling":         Kit,
	"sdk/reclaim":           Kit,
	"sdk/plugin/plugintest": Kit,
	"sdk/streamkit":         Kit,
}

func main() {
	var (
		write    = flag.Bool("write", false, "write the current API to the snapshot instead of checking it")
		snapshot = flag.String("snapshot", "sdk/api/v0.txt", "the snapshot file, relative to the module root")
		dir      = flag.String("C", ".", "a directory of the module to check")
	)
	flag.Parse()
	cfg := Config{Dir: *dir, Pattern: "./sdk/...", Classes: classes}
	if err := run(cfg, *snapshot, *write, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api-check:", err)
		os.Exit(1)
	}
}

// errBreaking is returned when the stable API changed incompatibly.
var errBreaking = errors.New("the stable sdk API changed incompatibly")

func run(cfg Config, snapshot string, write bool, out io.Writer) error {
	lines, err := Render(cfg)
	if err != nil {
		return err
	}
	path := snapshot
	if !strings.HasPrefix(path, "/") {
		path = cfg.Dir + "/" + snapshot
	}
	if write {
		var b bytes.Buffer
		b.WriteString(header)
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing the snapshot: %w", err)
		}
		fmt.Fprintf(out, "api-snapshot: wrote %d lines to %s\n", len(lines), snapshot)
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the snapshot (make api-snapshot writes it): %w", err)
	}
	rep := Compare(parseSnapshot(data), lines)
	rep.Print(out, snapshot)
	if len(rep.Breaking) > 0 {
		return errBreaking
	}
	return nil
}

const header = `# The exported API of the sdk packages at the last release: the baseline
# make api-check compares against (see internal/apicheck). There is no
# release tag yet; this is the API as first recorded. Regenerate it only
# deliberately, with make api-snapshot, when a release is cut or a break
# of the stable API is intended (a new major version), and say so in the
# commit. One declaration per line; "pkg P, stable|kit" gives the class.
`

func parseSnapshot(data []byte) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

// Config says what to render.
type Config struct {
	Dir     string           // a directory of the module
	Pattern string           // go list pattern of the packages, "./sdk/..."
	Classes map[string]Class // class by path relative to the module
}

// Render returns the sorted API lines of the packages cfg names.
func Render(cfg Config) ([]string, error) {
	mod, err := goCmd(cfg.Dir, "list", "-m", "-f", "{{.Path}}")
	if err != nil {
		return nil, err
	}
	module := strings.TrimSpace(mod)
	listed, err := goCmd(cfg.Dir, "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}\t{{.DepOnly}}", cfg.Pattern)
	if err != nil {
		return nil, err
	}
	exports := map[string]string{}
	var targets []string
	for _, l := range strings.Split(strings.TrimSpace(listed), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("go list: unexpected line %q", l)
		}
		exports[f[0]] = f[1]
		if f[2] == "false" && !isInternal(f[0]) {
			targets = append(targets, f[0])
		}
	}
	sort.Strings(targets)
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
	rel := func(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }
	var lines, problems []string
	for _, path := range targets {
		name := rel(path)
		class, ok := cfg.Classes[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("package %s is not classified as stable or kit (internal/apicheck classes, sdk/doc.go)", name))
			continue
		}
		pkg, err := imp.Import(path)
		if err != nil {
			return nil, fmt.Errorf("reading the export data of %s: %w", path, err)
		}
		pl := packageLines(pkg, module)
		if class == Stable {
			for _, l := range pl {
				for kit, c := range cfg.Classes {
					if c == Kit && mentions(l, kit) {
						problems = append(problems, fmt.Sprintf("stable package %s exposes a type of kit %s: %s", name, kit, l))
					}
				}
			}
		}
		sort.Strings(pl)
		prefix := "pkg " + name + ", "
		lines = append(lines, prefix+string(class)) // first: it says how to read the rest
		for _, l := range pl {
			lines = append(lines, prefix+l)
		}
	}
	for name := range cfg.Classes {
		found := false
		for _, path := range targets {
			found = found || rel(path) == name
		}
		if !found {
			problems = append(problems, fmt.Sprintf("classified package %s does not exist (remove it from the classes)", name))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "\n  "))
	}
	return lines, nil
}

// mentions reports whether an API line names a type of package pkg
// (rendered "pkg.Name" after a space, '*', '(', '[' or ']').
func mentions(line, pkg string) bool {
	for i := 0; ; {
		j := strings.Index(line[i:], pkg+".")
		if j < 0 {
			return false
		}
		j += i
		if j > 0 && strings.ContainsRune(" *([]", rune(line[j-1])) {
			return true
		}
		i = j + 1
	}
}

func isInternal(path string) bool {
	return strings.HasSuffix(path, "/internal") || strings.Contains(path, "/internal/")
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// packageLines renders the exported API of pkg, unsorted.
func packageLines(pkg *types.Package, module string) []string {
	qual := func(p *types.Package) string {
		if p == pkg {
			return ""
		}
		return strings.TrimPrefix(strings.TrimPrefix(p.Path(), module), "/")
	}
	ts := func(t types.Type) string { return types.TypeString(unname(t), qual) }
	var lines []string
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch o := obj.(type) {
		case *types.Const:
			lines = append(lines, fmt.Sprintf("const %s %s = %s", name, ts(o.Type()), o.Val().ExactString()))
		case *types.Var:
			lines = append(lines, fmt.Sprintf("var %s %s", name, ts(o.Type())))
		case *types.Func:
			lines = append(lines, "func "+name+strings.TrimPrefix(ts(o.Type()), "func"))
		case *types.TypeName:
			lines = append(lines, typeLines(o, ts)...)
		}
	}
	return lines
}

func typeLines(o *types.TypeName, ts func(types.Type) string) []string {
	name := o.Name()
	if o.IsAlias() {
		return []string{fmt.Sprintf("type %s = %s", name, ts(o.Type()))}
	}
	named, ok := o.Type().(*types.Named)
	if !ok {
		return []string{fmt.Sprintf("type %s %s", name, ts(o.Type()))}
	}
	decl := name
	if tp := named.TypeParams(); tp.Len() > 0 {
		var ps []string
		for i := range tp.Len() {
			ps = append(ps, tp.At(i).Obj().Name()+" "+ts(tp.At(i).Constraint()))
		}
		decl += "[" + strings.Join(ps, ", ") + "]"
	}
	var lines []string
	switch u := named.Underlying().(type) {
	case *types.Struct:
		lines = append(lines, "type "+decl+" struct")
		for i := range u.NumFields() {
			f := u.Field(i)
			switch {
			case f.Embedded():
				lines = append(lines, fmt.Sprintf("type %s struct, embedded %s", name, ts(f.Type())))
			case f.Exported():
				lines = append(lines, fmt.Sprintf("type %s struct, %s %s", name, f.Name(), ts(f.Type())))
			}
		}
	case *types.Interface:
		// Adding a method to an interface that others may implement
		// breaks them, so its line lists every method; an interface with
		// an unexported method cannot be implemented elsewhere (sealed).
		var names []string
		sealed := false
		for i := range u.NumMethods() {
			m := u.Method(i)
			if !m.Exported() {
				sealed = true
				continue
			}
			names = append(names, m.Name())
			lines = append(lines, fmt.Sprintf("method (%s) %s%s", name, m.Name(), strings.TrimPrefix(ts(m.Type()), "func")))
		}
		slices.Sort(names)
		if sealed {
			lines = append(lines, "type "+decl+" interface, sealed")
		} else {
			lines = append(lines, "type "+decl+" interface { "+strings.Join(names, ", ")+" }")
		}
		return lines
	default:
		lines = append(lines, fmt.Sprintf("type %s %s", decl, ts(u)))
	}
	// Methods: the method set of *T, promoted ones included; (T) for
	// those T's own method set has.
	val := types.NewMethodSet(named)
	ptr := types.NewMethodSet(types.NewPointer(named))
	for i := range ptr.Len() {
		m := ptr.At(i).Obj()
		if !m.Exported() {
			continue
		}
		recv := "*" + name
		if val.Lookup(m.Pkg(), m.Name()) != nil {
			recv = name
		}
		lines = append(lines, fmt.Sprintf("method (%s) %s%s", recv, m.Name(), strings.TrimPrefix(ts(m.Type()), "func")))
	}
	return lines
}

// unname returns t with the parameter and result names of every function
// type in it dropped: renaming a parameter breaks no caller.
func unname(t types.Type) types.Type {
	switch t := t.(type) {
	case *types.Signature:
		tuple := func(tu *types.Tuple) *types.Tuple {
			vars := make([]*types.Var, tu.Len())
			for i := range tu.Len() {
				vars[i] = types.NewParam(token.NoPos, tu.At(i).Pkg(), "", unname(tu.At(i).Type()))
			}
			return types.NewTuple(vars...)
		}
		// Receivers and type parameters are rendered elsewhere.
		return types.NewSignatureType(nil, nil, nil, tuple(t.Params()), tuple(t.Results()), t.Variadic())
	case *types.Pointer:
		return types.NewPointer(unname(t.Elem()))
	case *types.Slice:
		return types.NewSlice(unname(t.Elem()))
	case *types.Array:
		return types.NewArray(unname(t.Elem()), t.Len())
	case *types.Map:
		return types.NewMap(unname(t.Key()), unname(t.Elem()))
	case *types.Chan:
		return types.NewChan(t.Dir(), unname(t.Elem()))
	}
	return t
}

// Report is what Compare found.
type Report struct {
	Breaking   []string // lines of stable packages that are gone
	KitChanges []string // lines of kit packages that are gone
	Added      []string // lines that are new
}

// Compare compares the snapshot's lines with the current ones. A line is
// judged by its package's class in the snapshot: the promise made is the
// one that counts.
func Compare(old, cur []string) Report {
	class := map[string]Class{}
	for _, l := range old {
		pkg, rest, _ := strings.Cut(strings.TrimPrefix(l, "pkg "), ", ")
		if rest == string(Stable) || rest == string(Kit) {
			class[pkg] = Class(rest)
		}
	}
	have := map[string]bool{}
	for _, l := range cur {
		have[l] = true
	}
	had := map[string]bool{}
	var r Report
	for _, l := range old {
		had[l] = true
		if have[l] {
			continue
		}
		pkg, _, _ := strings.Cut(strings.TrimPrefix(l, "pkg "), ", ")
		if class[pkg] == Kit {
			r.KitChanges = append(r.KitChanges, l)
		} else {
			r.Breaking = append(r.Breaking, l)
		}
	}
	for _, l := range cur {
		if !had[l] {
			r.Added = append(r.Added, l)
		}
	}
	return r
}

// Print writes the report for people.
func (r Report) Print(w io.Writer, snapshot string) {
	if len(r.Added) > 0 {
		fmt.Fprintf(w, "api-check: %d additions since %s (compatible):\n", len(r.Added), snapshot)
		for _, l := range r.Added {
			fmt.Fprintln(w, "+ "+l)
		}
	}
	if len(r.KitChanges) > 0 {
		fmt.Fprintf(w, "api-check: %d lines of kit packages removed or changed since %s (kits make no compatibility promise; list them in the release notes):\n", len(r.KitChanges), snapshot)
		for _, l := range r.KitChanges {
			fmt.Fprintln(w, "- "+l)
		}
	}
	if len(r.Breaking) > 0 {
		fmt.Fprintf(w, "api-check: %d lines of the STABLE sdk API removed or changed since %s:\n", len(r.Breaking), snapshot)
		for _, l := range r.Breaking {
			fmt.Fprintln(w, "- "+l)
		}
		fmt.Fprintf(w, "A changed declaration shows as its old line here (-) and its new line among the additions (+).\n"+
			"Restore the old API (add rather than change: a new function, an optional interface, a new field),\n"+
			"or, if the break is deliberate (a new major version), run make api-snapshot and commit %s\n"+
			"with a message that says why.\n", snapshot)
		return
	}
	if len(r.Added) == 0 && len(r.KitChanges) == 0 {
		fmt.Fprintf(w, "api-check: the sdk API matches %s\n", snapshot)
	} else {
		fmt.Fprintln(w, "api-check: ok (no incompatible change to the stable API)")
	}
}
