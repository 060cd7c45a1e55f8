package control

import (
	"strings"
	"testing"
)

func TestMemoryConfig(t *testing.T) {
	tests := []struct {
		name string
		in   string // the memory block, after head
		want Memory
	}{
		{"default", "", DefaultMemory},
		{"gc", "memory:\n  policy: gc\n  gc_percent: 50\n  limit: 1GiB\n", Memory{Policy: MemoryGC, GCPercent: 50, Limit: 1 << 30}},
		{"gc defaults", "memory: {policy: gc}\n", DefaultMemory},
		{"limit only", "memory: {limit: 256MiB}\n", Memory{Policy: MemoryGC, GCPercent: 100, Limit: 256 << 20}},
		{"policy limit", "memory:\n  policy: limit\n  limit: 256MB\n", Memory{Policy: MemoryLimit, Limit: 256e6}},
		{"policy off", "memory: {policy: off}\n", Memory{Policy: MemoryOff, Limit: DefaultMemoryLimit}},
		{"units", "memory: {limit: 2048 MiB}\n", Memory{Policy: MemoryGC, GCPercent: 100, Limit: 2 << 30}},
		{"bytes", "memory: {limit: 100000000B}\n", Memory{Policy: MemoryGC, GCPercent: 100, Limit: 1e8}},
		{"TiB", "memory: {limit: 1TiB}\n", Memory{Policy: MemoryGC, GCPercent: 100, Limit: 1 << 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, probs := Parse([]byte(svc+tt.in), "t.yaml")
			if c == nil || len(probs) != 0 {
				t.Fatalf("problems: %v", probs)
			}
			if c.Memory != tt.want {
				t.Errorf("memory %+v, want %+v", c.Memory, tt.want)
			}
		})
	}
}

func TestMemoryProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string // after svc (9 lines): the block starts on line 10
		want string
		warn bool
	}{
		{"not a mapping", "memory: gc\n", "10:9: memory: expected a mapping of keys (key: value), got \"gc\"", false},
		{"unknown key", "memory:\n  polcy: gc\n", "11:3: memory.polcy: unknown key (did you mean policy?)", false},
		{"unknown policy", "memory:\n  policy: auto\n", "11:11: memory.policy: unknown value \"auto\" (expected gc, limit or off)", false},
		{"gc_percent zero", "memory:\n  gc_percent: 0\n", "11:15: memory.gc_percent: must be at least 1 (0 would collect without pause; to turn the collector off use policy: limit)", false},
		{"gc_percent negative", "memory:\n  gc_percent: -1\n", "11:15: memory.gc_percent: -1 is negative (expected 0 to 10000)", false},
		{"gc_percent large", "memory:\n  gc_percent: 20000\n", "11:15: memory.gc_percent: 20000 is too large (at most 10000)", false},
		{"gc_percent with limit", "memory:\n  policy: limit\n  gc_percent: 100\n", "12:15: memory.gc_percent: only policy gc has a gc_percent (policy is limit)", false},
		{"gc_percent with off", "memory:\n  gc_percent: 100\n  policy: off\n", "11:15: memory.gc_percent: only policy gc has a gc_percent (policy is off)", false},
		{"no unit", "memory:\n  limit: 536870912\n", "11:10: memory.limit: 536870912 has no unit (e.g. 536870912MiB; units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", false},
		{"bad unit", "memory:\n  limit: 512Mb\n", "11:10: memory.limit: unknown unit \"Mb\" in \"512Mb\" (did you mean MB?)", false},
		{"bad unit lower", "memory:\n  limit: 1gib\n", "11:10: memory.limit: unknown unit \"gib\" in \"1gib\" (did you mean GiB?)", false},
		{"unknown unit", "memory:\n  limit: 5 pages\n", "11:10: memory.limit: unknown unit \"pages\" in \"5 pages\" (expected B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", false},
		{"foreign unit", "memory:\n  limit: 5XB\n", "11:10: memory.limit: unknown unit \"XB\" in \"5XB\" (expected B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", false},
		{"fraction", "memory:\n  limit: 1.5GiB\n", "11:10: memory.limit: \"1.5GiB\" is not a size (e.g. 512MiB, 1GiB, 256MB)", false},
		{"too small", "memory:\n  limit: 16MiB\n", "11:10: memory.limit: 16MiB is too small (at least 64MiB)", false},
		{"too large", "memory:\n  limit: 2048TiB\n", "11:10: memory.limit: 2048TiB is too large (at most 1024TiB)", false},
		{"overflow", "memory:\n  limit: 99999999999999999999GiB\n", "11:10: memory.limit: 99999999999999999999GiB is too large (at most 1024TiB)", false},
		{"overflow unit", "memory:\n  limit: 9999999999TiB\n", "11:10: memory.limit: 9999999999TiB is too large (at most 1024TiB)", false},
		{"empty", "memory:\n  limit:\n", "11:9: memory.limit: a value is required", false},
		{"a list", "memory:\n  limit: [1GiB]\n", "11:10: memory.limit: expected a size such as 512MiB, got a list", false},
		{"limit with off", "memory:\n  policy: off\n  limit: 1GiB\n", "12:10: warning: memory.limit: policy off never collects: the limit is not applied", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, probs := Parse([]byte(svc+tt.in), "t.yaml")
			want := "t.yaml:" + tt.want
			var got []string
			found := false
			for _, p := range probs {
				got = append(got, p.String())
				found = found || p.String() == want
			}
			if !found {
				t.Errorf("missing problem\n want %s\n got  %s", want, strings.Join(got, "\n      "))
			}
			if tt.warn != (c != nil) {
				t.Errorf("config returned = %v, want %v (problems: %v)", c != nil, tt.warn, got)
			}
		})
	}
}

func TestMemoryRestart(t *testing.T) {
	a, _ := Parse([]byte(svc), "t.yaml")
	b, _ := Parse([]byte(svc+"memory: {policy: limit}\n"), "t.yaml")
	if got, _ := restartKeys(a, b); len(got) != 1 || got[0] != "memory" {
		t.Errorf("restartKeys = %v, want [memory]", got)
	}
	if got, _ := restartKeys(a, a); len(got) != 0 {
		t.Errorf("restartKeys of the same config = %v", got)
	}
}

func TestFormatSize(t *testing.T) {
	for b, want := range map[int64]string{512 << 20: "512MiB", 1 << 30: "1GiB", 1536 << 20: "1536MiB", 1000: "1000B", 4 << 10: "4KiB", 1 << 50: "1024TiB"} {
		if got := FormatSize(b); got != want {
			t.Errorf("FormatSize(%d) = %s, want %s", b, got, want)
		}
	}
}
