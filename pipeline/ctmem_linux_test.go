package pipeline

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rail-lb/rail/internal/privtest"
)

// setKernel writes v to a kernel setting for the test and puts the old
// value back after it.
func setKernel(t *testing.T, path, v string) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	prev := strings.TrimSpace(string(old))
	if i, j := strings.IndexByte(prev, '['), strings.IndexByte(prev, ']'); i >= 0 && j > i {
		prev = prev[i+1 : j] // a sysfs choice: "always [never]" → never
	}
	if err := os.WriteFile(path, []byte(v), 0); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, []byte(prev), 0); err != nil {
			t.Errorf("restore %s to %s: %v", path, prev, err)
		}
	})
}

// hugeMapped is how many bytes of the process's shared memory are mapped
// with huge pages, hugetlb or transparent.
func hugeMapped(t *testing.T) (hugetlb, thp int64) {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Shared_Hugetlb:", "Private_Hugetlb:":
			hugetlb += kb << 10
		case "ShmemPmdMapped:":
			thp += kb << 10
		}
	}
	return hugetlb, thp
}

// TestConntrackPages: a table takes 2 MiB pages from the hugetlb pool when
// the pool has room for it; else shared memory that transparent huge pages
// back when shmem_enabled allows it; else base pages — and it works the
// same on each (entries found again after touching every page).
func TestConntrackPages(t *testing.T) {
	privtest.Require(t)
	const entries = 1 << 16 // 3 MiB of tables: two huge pages
	fill := func(c *Conntrack) {
		t.Helper()
		for i := range c.mem {
			c.mem[i] = 0 // fault every page in
		}
		k := makeFlowKey(addr128{lo: 0xffff0a000001}, addr128{lo: 0xffff0a000002}, 1000<<16|80, 6)
		_, at := c.lookup(7, &k, 1)
		c.insert(at, &k, tcpACK, 3, 42, 1)
		if e, _ := c.lookup(7, &k, 1); e == nil || e.backend != 3 {
			t.Fatalf("%v: the entry is not found again", c.Pages())
		}
	}
	for _, tc := range []struct {
		name      string
		pool      string // vm.nr_hugepages
		shmem     string // shmem_enabled
		want      Pages
		wantBytes func(hugetlb, thp int64) bool
	}{
		{"hugetlb pool with room", "8", "never", PagesHugeTLB, func(h, _ int64) bool { return h >= 4<<20 }},
		{"no pool, shmem THP advised", "0", "advise", PagesTHP, func(_, p int64) bool { return p >= 2<<20 }},
		{"a pool too small, no THP", "1", "never", PagesSmall, func(h, p int64) bool { return h == 0 && p == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setKernel(t, "/proc/sys/vm/nr_hugepages", tc.pool)
			setKernel(t, "/sys/kernel/mm/transparent_hugepage/shmem_enabled", tc.shmem)
			h0, p0 := hugeMapped(t)
			c, err := NewConntrack(entries, time.Hour, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if c.Pages() != tc.want {
				t.Fatalf("pages %v, want %v", c.Pages(), tc.want)
			}
			fill(c)
			h, p := hugeMapped(t)
			if !tc.wantBytes(h-h0, p-p0) {
				t.Errorf("%v: %d bytes mapped by hugetlb pages and %d by transparent ones", c.Pages(), h-h0, p-p0)
			}
			c.Close()
			if h, p := hugeMapped(t); h != h0 || p != p0 {
				t.Errorf("after Close: %d bytes still mapped by hugetlb pages and %d by transparent ones", h-h0, p-p0)
			}
		})
	}
}
