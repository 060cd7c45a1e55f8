package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and keeps its promises on any
// input: a Config exactly when there is no error, every problem located,
// and every returned Config obeying the rules the data path relies on.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	f.Add([]byte(svc))
	f.Add([]byte(""))
	f.Add([]byte("services: *a\n"))
	f.Add([]byte("a: &a [*a]\n"))
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, probs := Parse(data, "f.yaml")
		if (c == nil) != HasError(probs) {
			t.Fatalf("config %v with problems %v", c != nil, probs)
		}
		for _, p := range probs {
			if p.Msg == "" || p.File != "f.yaml" || p.Line < 0 || p.Column < 0 {
				t.Fatalf("bad problem %#v", p)
			}
			if p.Line == 0 && !strings.HasPrefix(p.Msg, "invalid YAML") && !strings.HasSuffix(p.Msg, "more problems not shown") {
				t.Fatalf("problem without a line: %v", p)
			}
			_ = p.String()
		}
		if c == nil {
			return
		}
		if !c.LocalAddress.Is4() {
			t.Fatalf("local address %v", c.LocalAddress)
		}
		if c.Conntrack.EntriesPerCore == 0 || c.Conntrack.EntriesPerCore&(c.Conntrack.EntriesPerCore-1) != 0 {
			t.Fatalf("entries per core %d", c.Conntrack.EntriesPerCore)
		}
		if c.CPUs != nil && c.Queues != nil && len(c.CPUs) != len(c.Queues) {
			t.Fatalf("cpus %v queues %v", c.CPUs, c.Queues)
		}
		names := map[string]bool{}
		for _, s := range c.Services {
			if names[s.Name] || s.Name == "" {
				t.Fatalf("service name %q", s.Name)
			}
			names[s.Name] = true
			if !s.VIP.IsValid() || s.VIP.Is4In6() || s.VIP == c.LocalAddress || s.VIP == c.LocalAddress6 {
				t.Fatalf("vip %v", s.VIP)
			}
			if h := s.Health; h != nil && (h.Port == 0 || h.Rise < 1 || h.Fall < 1 || h.Timeout > h.Interval) {
				t.Fatalf("health %+v", h)
			}
			if !isPrime(uint64(s.TableSize)) || int(s.TableSize) < len(s.Backends) {
				t.Fatalf("table size %d for %d backends", s.TableSize, len(s.Backends))
			}
			keys := map[string]bool{}
			for _, b := range s.Backends {
				if !b.Address.IsValid() || b.Address.Is6() && !c.LocalAddress6.Is6() || keys[b.Key()] {
					t.Fatalf("backend %+v", b)
				}
				keys[b.Key()] = true
			}
		}
	})
}
