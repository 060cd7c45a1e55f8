package control

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MemoryPolicy says when the Go garbage collector runs (docs/DEPLOY.md,
// Memory).
type MemoryPolicy string

const (
	// MemoryGC runs the collector with GOGC = Memory.GCPercent, under the
	// soft limit Memory.Limit. The default.
	MemoryGC MemoryPolicy = "gc"
	// MemoryLimit turns the collector off until the heap reaches
	// Memory.Limit; from then on it collects to stay under it.
	MemoryLimit MemoryPolicy = "limit"
	// MemoryOff never collects: the control plane's garbage stays, the heap
	// only grows. For benchmarks only.
	MemoryOff MemoryPolicy = "off"
)

// Memory is the memory: block.
type Memory struct {
	Policy MemoryPolicy
	// GCPercent is GOGC with MemoryGC (the heap may grow by this percentage
	// of the live heap before the next cycle); 0 with the other policies.
	GCPercent int
	// Limit is the soft memory limit in bytes (debug.SetMemoryLimit): the
	// collector runs when the Go runtime's memory reaches it, whatever
	// GCPercent says. MemoryOff does not apply it.
	Limit int64
}

// Limits of the memory block.
const (
	DefaultGCPercent = 100
	MaxGCPercent     = 10000
	// DefaultMemoryLimit is the soft limit when the file gives none.
	DefaultMemoryLimit = 512 << 20
	// MinMemoryLimit is the smallest soft limit: below it the control plane
	// alone would keep the collector busy.
	MinMemoryLimit = 64 << 20
	// MaxMemoryLimit is 1 PiB: anything larger is a typo.
	MaxMemoryLimit = 1 << 50
)

// DefaultMemory is the policy when the file has no memory: block.
var DefaultMemory = Memory{Policy: MemoryGC, GCPercent: DefaultGCPercent, Limit: DefaultMemoryLimit}

var memoryKeys = []string{"policy", "gc_percent", "limit"}

func (p *parser) memory(n *yaml.Node, m *Memory) {
	f, ok := p.mapping(n, "memory", memoryKeys)
	if !ok {
		return
	}
	if v := f["policy"]; v != nil {
		if s, ok := p.enum(v, "memory.policy", string(MemoryGC), string(MemoryLimit), string(MemoryOff)); ok {
			m.Policy = MemoryPolicy(s)
		}
	}
	if m.Policy != MemoryGC {
		m.GCPercent = 0
	}
	if v := f["gc_percent"]; v != nil {
		if pc, ok := p.uint(v, "memory.gc_percent", MaxGCPercent); ok {
			switch {
			case m.Policy != MemoryGC:
				p.errf(v, "memory.gc_percent", "only policy gc has a gc_percent (policy is %s)", m.Policy)
			case pc == 0:
				p.errf(v, "memory.gc_percent", "must be at least 1 (0 would collect without pause; to turn the collector off use policy: limit)")
			default:
				m.GCPercent = int(pc)
			}
		}
	}
	if v := f["limit"]; v != nil {
		if b, ok := p.size(v, "memory.limit", MinMemoryLimit, MaxMemoryLimit); ok {
			m.Limit = b
			if m.Policy == MemoryOff {
				p.warnf(v, "memory.limit", "policy off never collects: the limit is not applied")
			}
		}
	}
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([A-Za-z]*)$`)

var sizeUnits = map[string]int64{
	"B":  1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// size accepts a byte count with a unit, such as 512MiB, 1GiB or 256MB,
// in [min, max].
func (p *parser) size(n *yaml.Node, path string, min, max int64) (int64, bool) {
	if p.missing(n, path) {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode {
		p.errf(n, path, "expected a size such as 512MiB, got %s", describe(n))
		return 0, false
	}
	if n.ShortTag() == "!!int" {
		p.errf(n, path, "%s has no unit (e.g. %sMiB; units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", n.Value, n.Value)
		return 0, false
	}
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		p.errf(n, path, "%q is not a size (e.g. 512MiB, 1GiB, 256MB)", n.Value)
		return 0, false
	}
	unit, ok := sizeUnits[m[2]]
	if !ok {
		for u := range sizeUnits {
			if strings.EqualFold(u, m[2]) {
				p.errf(n, path, "unknown unit %q in %q (did you mean %s?)", m[2], n.Value, u)
				return 0, false
			}
		}
		p.errf(n, path, "unknown unit %q in %q (expected B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", m[2], n.Value)
		return 0, false
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || v > math.MaxInt64/unit || v*unit > max {
		p.errf(n, path, "%s is too large (at most %s)", n.Value, FormatSize(max))
		return 0, false
	}
	if v*unit < min {
		p.errf(n, path, "%s is too small (at least %s)", n.Value, FormatSize(min))
		return 0, false
	}
	return v * unit, true
}

// FormatSize writes a byte count the way the file would: in the largest
// binary unit that divides it (512MiB), else in bytes.
func FormatSize(b int64) string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b >= u.n && b%u.n == 0 {
			return fmt.Sprintf("%d%s", b/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB", b)
}
