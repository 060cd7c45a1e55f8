package maglev

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func pool(n int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Key: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Weight: 1}
	}
	return bs
}

func mustNew(t testing.TB, bs []Backend, size uint32, seed uint64) *Table {
	t.Helper()
	tab, err := New(bs, size, seed)
	if err != nil {
		t.Fatalf("New(%d backends, %d, %d): %v", len(bs), size, seed, err)
	}
	return tab
}

// keys maps every slot to its backend's key ("" for NoBackend).
func keys(tab *Table, bs []Backend) []string {
	out := make([]string, tab.Size())
	for i := range out {
		if b := tab.Lookup(uint64(i)); b != NoBackend {
			out[i] = bs[b].Key
		}
	}
	return out
}

// reference is the paper's Pseudocode 1, written as literally as possible:
// materialised permutations, next[], entry[] = −1, backends in key order.
func reference(bs []Backend, M uint32, seed uint64) []string {
	sorted := slices.Clone(bs)
	slices.SortFunc(sorted, func(a, b Backend) int { return strings.Compare(a.Key, b.Key) })
	N := len(sorted)
	permutation := make([][]uint32, N)
	for i, b := range sorted {
		offset := sipHash24(seed, tagOffset, b.Key) % uint64(M)
		skip := sipHash24(seed, tagSkip, b.Key)%uint64(M-1) + 1
		permutation[i] = make([]uint32, M)
		for j := range uint64(M) {
			permutation[i][j] = uint32((offset + j*skip) % uint64(M))
		}
	}
	next := make([]int, N)
	entry := make([]int, M)
	for j := range entry {
		entry[j] = -1
	}
	n := uint32(0)
	for {
		for i := range N {
			c := permutation[i][next[i]]
			for entry[c] >= 0 {
				next[i]++
				c = permutation[i][next[i]]
			}
			entry[c] = i
			next[i]++
			n++
			if n == M {
				out := make([]string, M)
				for j, e := range entry {
					out[j] = sorted[e].Key
				}
				return out
			}
		}
	}
}

func TestMatchesPaper(t *testing.T) {
	for _, tc := range []struct {
		n    int
		m    uint32
		seed uint64
	}{
		{1, 2, 0}, {2, 2, 0}, {3, 7, 1}, {5, 101, 0}, {7, 13, 99}, {13, 1009, 7}, {100, 10007, 3},
	} {
		t.Run(fmt.Sprintf("N=%d/M=%d/seed=%d", tc.n, tc.m, tc.seed), func(t *testing.T) {
			bs := pool(tc.n)
			got := keys(mustNew(t, bs, tc.m, tc.seed), bs)
			if want := reference(bs, tc.m, tc.seed); !slices.Equal(got, want) {
				t.Fatalf("table differs from the paper's population:\n got %v\nwant %v", got[:min(20, len(got))], want[:min(20, len(want))])
			}
		})
	}
}

// TestPinnedTable guards determinism across machines and releases: a small
// table written out in full.
func TestPinnedTable(t *testing.T) {
	bs := []Backend{{"a", 1}, {"b", 1}, {"c", 2}}
	got := keys(mustNew(t, bs, 13, 0), bs)
	want := strings.Fields("c b c c a c b c c a a b c")
	if !slices.Equal(got, want) {
		t.Fatalf("table changed:\n got %q\nwant %q", strings.Join(got, " "), strings.Join(want, " "))
	}
}

func TestEverySlotFilled(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 100, 1000} {
		for _, m := range []uint32{1009, 65537} {
			if uint32(n) > m {
				continue
			}
			tab := mustNew(t, pool(n), m, 0)
			if tab.Size() != m || len(tab.slots) != int(m) {
				t.Fatalf("N=%d M=%d: size %d, %d slots", n, m, tab.Size(), len(tab.slots))
			}
			for i, b := range tab.slots {
				if int(b) >= n {
					t.Fatalf("N=%d M=%d: slot %d = %d", n, m, i, b)
				}
			}
		}
	}
	// M == N: every backend gets exactly one slot.
	tab := mustNew(t, pool(13), 13, 5)
	for i, c := range tab.Shares() {
		if c != 1 {
			t.Errorf("M=N=13: backend %d has %d slots", i, c)
		}
	}
}

func TestBalance(t *testing.T) {
	for _, tc := range []struct {
		n     int
		m     uint32
		bound float64 // max share / mean share
	}{
		// The paper (Fig. 4 and §3.4) reports the imbalance grows as M/N
		// shrinks; these bounds are generous versions of what we measure.
		{10, 65537, 1.01},
		{100, 65537, 1.05},
		{1000, 65537, 1.2},
		{1000, 655373, 1.05},
	} {
		tab := mustNew(t, pool(tc.n), tc.m, 0)
		sh := tab.Shares()
		mean := float64(tc.m) / float64(tc.n)
		r := float64(slices.Max(sh)) / mean
		t.Logf("N=%d M=%d: shares %d..%d, mean %.1f, max/mean %.4f", tc.n, tc.m, slices.Min(sh), slices.Max(sh), mean, r)
		// Round-robin turns of one slot each: shares differ by at most one.
		if slices.Max(sh)-slices.Min(sh) > 1 {
			t.Errorf("N=%d M=%d: shares range %d..%d", tc.n, tc.m, slices.Min(sh), slices.Max(sh))
		}
		if r > tc.bound {
			t.Errorf("N=%d M=%d: max/mean = %.4f > %.2f", tc.n, tc.m, r, tc.bound)
		}
	}
}

func TestWeights(t *testing.T) {
	bs := []Backend{{"w1", 1}, {"w2", 2}, {"w3", 3}, {"drain", 0}, {"w10", 10}, {"w0", 0}}
	const m = 65537
	tab := mustNew(t, bs, m, 0)
	sh := tab.Shares()
	total := uint32(0)
	for _, b := range bs {
		total += b.Weight
	}
	for i, b := range bs {
		want := float64(m) * float64(b.Weight) / float64(total)
		t.Logf("%-5s weight %2d: %5d slots (ideal %.0f)", b.Key, b.Weight, sh[i], want)
		if b.Weight == 0 {
			if sh[i] != 0 {
				t.Errorf("%s has weight 0 but %d slots", b.Key, sh[i])
			}
			continue
		}
		if d := float64(sh[i])/want - 1; d > 0.01 || d < -0.01 {
			t.Errorf("%s: %d slots, want %.0f ±1%%", b.Key, sh[i], want)
		}
	}
	// Scaling every weight by the same factor changes nothing.
	scaled := slices.Clone(bs)
	for i := range scaled {
		scaled[i].Weight *= 7
	}
	if !slices.Equal(tab.slots, mustNew(t, scaled, m, 0).slots) {
		t.Error("weights ×7 built a different table")
	}
	// All equal weights ≠ 1 is exactly the paper's (unweighted) algorithm.
	eq := pool(50)
	for i := range eq {
		eq[i].Weight = 1000
	}
	if !slices.Equal(keys(mustNew(t, eq, 1009, 3), eq), reference(eq, 1009, 3)) {
		t.Error("equal weights 1000 differ from the paper's population")
	}
}

func TestAllDrained(t *testing.T) {
	for _, bs := range [][]Backend{nil, {}, {{"a", 0}, {"b", 0}}} {
		tab := mustNew(t, bs, 65537, 0)
		if tab.Size() != 65537 {
			t.Errorf("Size() = %d", tab.Size())
		}
		for _, h := range []uint64{0, 1, 65537, ^uint64(0)} {
			if b := tab.Lookup(h); b != NoBackend {
				t.Errorf("%v: Lookup(%d) = %d, want NoBackend", bs, h, b)
			}
		}
		for i, c := range tab.Shares() {
			if c != 0 {
				t.Errorf("%v: backend %d has %d slots", bs, i, c)
			}
		}
	}
	// Drained backends don't count against the size: 3 slots, 3 active.
	bs := append(pool(3), Backend{"x", 0}, Backend{"y", 0})
	mustNew(t, bs, 3, 0)
}

func TestOrderIndependence(t *testing.T) {
	bs := pool(200)
	for i := range bs {
		bs[i].Weight = uint32(i%5) + uint32(i%3)
	}
	want := keys(mustNew(t, bs, 10007, 11), bs)
	r := rand.New(rand.NewPCG(1, 2))
	for range 10 {
		sh := slices.Clone(bs)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		if got := keys(mustNew(t, sh, 10007, 11), sh); !slices.Equal(got, want) {
			t.Fatal("shuffled input built a different table")
		}
	}
}

func TestRepeatable(t *testing.T) {
	bs := pool(100)
	a := mustNew(t, bs, 65537, 42)
	b := mustNew(t, bs, 65537, 42)
	if !slices.Equal(a.slots, b.slots) {
		t.Fatal("two builds of the same input differ")
	}
	c := mustNew(t, bs, 65537, 43)
	same := 0
	for i := range a.slots {
		if a.slots[i] == c.slots[i] {
			same++
		}
	}
	// Another seed is another table: about 1/N of slots agree by chance.
	if same > 65537/10 {
		t.Errorf("seeds 42 and 43 agree on %d of 65537 slots", same)
	}
}

// TestDisruption measures how many slots change owner when one backend is
// removed or added. The ideal is exactly the removed backend's own slots;
// Maglev trades a little extra movement for balance (paper §3.4, Fig. 5).
func TestDisruption(t *testing.T) {
	for _, tc := range []struct {
		n     int
		m     uint32
		bound float64 // extra moved slots / M
	}{
		{10, 65537, 0.02},
		{100, 65537, 0.02},
		{1000, 65537, 0.05},
		{1000, 655373, 0.02},
	} {
		bs := pool(tc.n)
		before := keys(mustNew(t, bs, tc.m, 0), bs)
		victim := bs[tc.n/2].Key
		rest := without(bs, tc.n/2)
		after := keys(mustNew(t, rest, tc.m, 0), rest)
		own, extra := 0, 0
		for i := range before {
			switch {
			case before[i] == victim:
				own++
			case before[i] != after[i]:
				extra++
			}
		}
		frac := float64(extra) / float64(tc.m)
		t.Logf("N=%d M=%d remove 1: its %d slots move, plus %d others (%.3f%% of M)", tc.n, tc.m, own, extra, 100*frac)
		if frac > tc.bound {
			t.Errorf("N=%d M=%d: %d extra slots moved (%.3f%% > %.1f%%)", tc.n, tc.m, extra, 100*frac, 100*tc.bound)
		}
		// Draining (weight 0) is the same as removing.
		dr := slices.Clone(bs)
		dr[tc.n/2].Weight = 0
		if got := keys(mustNew(t, dr, tc.m, 0), dr); !slices.Equal(got, after) {
			t.Errorf("N=%d: draining differs from removing", tc.n)
		}
	}
}

// without returns bs without element i.
func without(bs []Backend, i int) []Backend { return slices.Delete(slices.Clone(bs), i, i+1) }

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		bs   []Backend
		size uint32
		is   error
		msg  string
	}{
		{"not prime", pool(3), 65536, ErrNotPrime, "table size 65536 is not prime (try 65537)"},
		{"zero", pool(3), 0, ErrNotPrime, "table size 0 is not prime (try 3)"},
		{"one", pool(1), 1, ErrNotPrime, "table size 1 is not prime (try 2)"},
		{"too small", pool(10), 7, ErrSizeTooSmall, "table size 7 is too small for 10 backends with weight > 0 (try 1009)"},
		{"too large", pool(3), MaxSize + 1, ErrSizeTooLarge, "table size 33554433 is too large (at most 33554432)"},
		{"duplicate", []Backend{{"a", 1}, {"b", 1}, {"a", 0}}, 7, ErrDuplicateKey, `backends[0] and backends[2]: duplicate backend key "a"`},
		{"empty key", []Backend{{"a", 1}, {"", 1}}, 7, ErrEmptyKey, "backends[1]: empty backend key"},
		{"too many", pool(MaxBackends + 1), 65537, ErrTooMany, "too many backends: 65536 backends (at most 65535)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := New(tc.bs, tc.size, 0)
			if err == nil {
				t.Fatalf("New = %v, want error", tab)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if err.Error() != tc.msg {
				t.Errorf("error %q, want %q", err, tc.msg)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	bs := pool(10)
	tab := mustNew(t, bs, 101, 0)
	for _, h := range []uint64{0, 1, 100, 101, 102, 1 << 40, ^uint64(0)} {
		if got, want := tab.Lookup(h), tab.slots[h%101]; got != want {
			t.Errorf("Lookup(%d) = %d, want slot %d = %d", h, got, h%101, want)
		}
	}
}

func TestLookupNoAllocs(t *testing.T) {
	tab := mustNew(t, pool(100), 65537, 0)
	h := uint64(0x9e3779b97f4a7c15)
	if n := testing.AllocsPerRun(1000, func() {
		h = h*6364136223846793005 + 1442695040888963407
		if tab.Lookup(h) == NoBackend {
			t.Fatal("NoBackend")
		}
	}); n != 0 {
		t.Errorf("Lookup allocates %v times per call", n)
	}
}

// TestNewAllocs checks that a build allocates per build, not per slot.
func TestNewAllocs(t *testing.T) {
	bs := pool(1000)
	if n := testing.AllocsPerRun(5, func() { mustNew(t, bs, 65537, 0) }); n > 5 {
		t.Errorf("New allocates %v times per build", n)
	}
}

func BenchmarkNew(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, m := range []uint32{65537, 655373} {
			bs := pool(n)
			b.Run(fmt.Sprintf("N=%d/M=%d", n, m), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := New(bs, m, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

var sink uint16

func BenchmarkLookup(b *testing.B) {
	tab := mustNew(b, pool(1000), 65537, 0)
	b.ReportAllocs()
	h := uint64(1)
	var acc uint16
	for b.Loop() {
		h = h*6364136223846793005 + 1442695040888963407
		acc ^= tab.Lookup(h)
	}
	sink = acc
}
