package control

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// referenceDoc is the user-facing reference that must name every
// configuration key and every metric.
const referenceDoc = "../docs/reference.md"

// referenceKeyLists are the parser's key lists, by variable name, with the
// path their keys have in a file (a list's elements written []), which is
// how docs/reference.md names them: `services[].health.port`. A key added
// to one of these lists must be documented; a list this map does not know
// makes TestReferenceKeys fail unless its mapping call names its path.
var referenceKeyLists = map[string]struct {
	path string
	keys []string
}{
	"topKeys":       {"", topKeys},
	"conntrackKeys": {"conntrack", conntrackKeys},
	"apiKeys":       {"api", apiKeys},
	"httpKeys":      {"http", httpKeys},
	"serviceKeys":   {"services[]", serviceKeys},
	"healthKeys":    {"services[].health", healthKeys},
	"backendKeys":   {"services[].backends[]", backendKeys},
	"quicKeys":      {"services[].quic", quicKeys},
	"bgpKeys":       {"bgp", bgpKeys},
	"peerKeys":      {"bgp.peers[]", peerKeys},
}

func readReference(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatalf("the reference must exist: %v", err)
	}
	return string(b)
}

// sourceFiles parses this package's non-test Go files.
func sourceFiles(t *testing.T) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[n] = f
	}
	return files
}

// stringList returns the strings of a []string{…} literal.
func stringList(e ast.Expr) ([]string, bool) {
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, false
	}
	var out []string
	for _, el := range cl.Elts {
		bl, ok := el.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return nil, false
		}
		s, err := strconv.Unquote(bl.Value)
		if err != nil {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// parserKeys finds every key the parser accepts: the keys of each
// p.mapping(node, path, keys) call in the package, by the path they have in
// a file. Lists of referenceKeyLists are taken from the running code; any
// other list is read from the source, with the path its call gives.
func parserKeys(t *testing.T) []string {
	files := sourceFiles(t)
	vars := map[string]ast.Expr{} // package-level var name → value
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						vars[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	var paths []string
	used := map[string]bool{}
	calls := 0
	for name, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 3 {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "mapping" {
				return true
			}
			calls++
			where := name + ": mapping call"
			var keys []string
			prefix, known := "", false
			if id, ok := call.Args[2].(*ast.Ident); ok {
				where = name + ": mapping call with " + id.Name
				if l, ok := referenceKeyLists[id.Name]; ok {
					keys, prefix, known = l.keys, l.path, true
					used[id.Name] = true
				} else if v, ok := vars[id.Name]; ok {
					keys, _ = stringList(v)
				}
			} else {
				keys, _ = stringList(call.Args[2])
			}
			if keys == nil {
				t.Errorf("%s: cannot read its keys; add the list to referenceKeyLists", where)
				return true
			}
			if !known {
				bl, ok := call.Args[1].(*ast.BasicLit)
				if !ok || bl.Kind != token.STRING {
					t.Errorf("%s: its path is not a string literal; add the list to referenceKeyLists with its path", where)
					return true
				}
				prefix, _ = strconv.Unquote(bl.Value)
			}
			for _, k := range keys {
				paths = append(paths, join(prefix, k))
			}
			return true
		})
	}
	for name := range referenceKeyLists {
		if !used[name] {
			t.Errorf("referenceKeyLists has %s, which no mapping call uses any more", name)
		}
	}
	if calls < len(referenceKeyLists) {
		t.Fatalf("found %d mapping calls, want at least %d: has the parser changed?", calls, len(referenceKeyLists))
	}
	sort.Strings(paths)
	return paths
}

// TestReferenceKeys: every configuration key the parser accepts is in
// docs/reference.md, as `path` (e.g. `services[].backends[].weight`).
func TestReferenceKeys(t *testing.T) {
	doc := readReference(t)
	paths := parserKeys(t)
	for _, want := range []string{"interface", "conntrack.entries_per_core", "services[].when_down", "services[].forward_to", "bgp.peers[].hold_time"} {
		if !slices.Contains(paths, want) {
			t.Errorf("the parser's keys lack %s: the search for them is broken (%v)", want, paths)
		}
	}
	for _, p := range paths {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("%s does not document the configuration key `%s`", referenceDoc, p)
		}
	}
}

var metricName = regexp.MustCompile("[\"`](rail_[a-z0-9_]+)")

// writtenMetrics collects the metric names in the package's files that
// write metrics (metrics.go, bgp.go and any other that calls
// metrics.Write…).
func writtenMetrics(t *testing.T) map[string]string {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{} // name → file
	var sources []string
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "metrics.Write") {
			continue
		}
		sources = append(sources, n)
		for _, m := range metricName.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = n
		}
	}
	for _, want := range []string{"metrics.go", "bgp.go"} {
		if !slices.Contains(sources, want) {
			t.Errorf("%s writes no metrics any more? (files that do: %v)", want, sources)
		}
	}
	for _, want := range []string{"rail_rx_packets_total", "rail_xsk_rx_dropped_total", "rail_health_local_errors_total", "rail_bgp_session_up"} {
		if out[want] == "" {
			t.Errorf("found no %s: the search for metric names is broken", want)
		}
	}
	return out
}

// TestReferenceMetrics: every metric the code writes is in
// docs/reference.md, and every metric the reference's tables list is
// written by the code.
func TestReferenceMetrics(t *testing.T) {
	doc := readReference(t)
	written := writtenMetrics(t)
	for name, file := range written {
		if strings.HasSuffix(name, "_") {
			t.Errorf("%s builds a metric name from pieces (%s…): write each name whole, so that it can be found", file, name)
			continue
		}
		if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, "`"+name+"{") {
			t.Errorf("%s does not document the metric %s (written in %s)", referenceDoc, name, file)
		}
	}
	row := regexp.MustCompile("(?m)^\\| `(rail_[a-z0-9_]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		if written[m[1]] == "" {
			t.Errorf("%s lists the metric %s, which no code writes", referenceDoc, m[1])
		}
	}
}
