package pipeline

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// alloc maps the tables from a memfd: a new one (fd < 0) or one a process
// passed over (AdoptConntrack), which must be the size of these tables.
// A new table's memfd takes 2 MiB pages from the kernel's reserved pool
// (hugetlb) when the pool has room for it, and ordinary shared memory
// otherwise, mapped on a 2 MiB boundary and advised as huge (MADV_HUGEPAGE)
// so that transparent huge pages back it where shmem_enabled allows. The
// mapping and the file go when the table is unreachable.
func (c *Conntrack) alloc(n4, n6 uint32, fd int) error {
	size := tablesBytes(n4, n6)
	length := (size + hugePage - 1) &^ (hugePage - 1)
	var mem []byte
	var err error
	if fd < 0 {
		fd, mem, err = newTableFile(length)
	} else {
		mem, err = adoptTableFile(fd, ctBytes(n4, n6), length)
	}
	if err != nil {
		return err
	}
	c.mem, c.fd = mem, fd
	c.pages = PagesSmall
	if isHugeTLB(fd) {
		c.pages = PagesHugeTLB
	} else if unix.Madvise(mem, unix.MADV_HUGEPAGE) == nil && shmemTHP("") {
		c.pages = PagesTHP
	}
	c.tables(mem, n4, n6)
	c.unmap = runtime.AddCleanup(c, ctMapping.release, ctMapping{mem, fd})
	return nil
}

// Close unmaps the tables and closes their file now rather than once c is
// collected (what a benchmark that makes table after table needs, so that
// the hugetlb pool is free for the next). c must not be used after.
func (c *Conntrack) Close() {
	c.unmap.Stop()
	ctMapping{c.mem, c.fd}.release()
	c.mem, c.buckets, c.buckets6, c.fd = nil, nil, nil, -1
	c.frags, c.bases = fragTable{}, [2]unsafe.Pointer{}
}

// closeTableFile closes a passed table file that is not adopted.
func closeTableFile(fd int) { unix.Close(fd) }

type ctMapping struct {
	mem []byte
	fd  int
}

// release unmaps (mapAligned's mapping: not unix.Mmap's, which
// unix.Munmap would refuse) and closes.
func (r ctMapping) release() {
	unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(r.mem)), uintptr(len(r.mem)))
	unix.Close(r.fd)
}

// newTableFile makes a memfd of length bytes and maps it: from the hugetlb
// pool if it has length bytes free (the mapping reserves them), else
// ordinary shared memory.
func newTableFile(length int) (int, []byte, error) {
	if fd, mem, err := tableFile(unix.MFD_HUGETLB|unix.MFD_HUGE_2MB, length); err == nil {
		return fd, mem, nil
	} // no room in the pool (or no pool): ordinary pages
	return tableFile(0, length)
}

// tableFile makes a memfd (with flags) of length bytes and maps it.
func tableFile(flags, length int) (int, []byte, error) {
	fd, err := unix.MemfdCreate("rail-conntrack", unix.MFD_CLOEXEC|flags)
	if err != nil {
		return -1, nil, fmt.Errorf("conntrack: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(length)); err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("conntrack: size the memfd to %d bytes: %w", length, err)
	}
	mem, err := mapTable(fd, length)
	if err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, mem, nil
}

// mapTable maps length bytes of table file fd, shared, on a huge-page
// boundary: a hugetlbfs file as it is (the kernel aligns its mappings to
// its page size, and reserves the pages or fails with ENOMEM), shared
// memory with mapAligned.
func mapTable(fd, length int) ([]byte, error) {
	if !isHugeTLB(fd) {
		return mapAligned(fd, length)
	}
	p, err := unix.MmapPtr(fd, 0, nil, uintptr(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("conntrack: mmap %d bytes of huge pages: %w", length, err)
	}
	return unsafe.Slice((*byte)(p), length), nil
}

// adoptTableFile maps a passed table file: length bytes (this version's
// files: the tables, the fragment table, rounded up to huge pages) or
// exactly old (the connection tables alone, as the first version with
// takeovers made them; the fragment table then starts empty). It closes
// fd on error.
func adoptTableFile(fd, old, length int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("conntrack: fstat the passed table fd %d: %w", fd, err)
	}
	if st.Size != int64(length) && st.Size != int64(old) {
		unix.Close(fd)
		return nil, fmt.Errorf("conntrack: the passed table is %d bytes, these tables take %d (conntrack.entries_per_core differs)", st.Size, length)
	}
	mem, err := mapTable(fd, int(st.Size))
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return mem, nil
}

// mapAligned maps length bytes of fd, shared, at an address that is a
// multiple of hugePage: what a transparent huge page needs.
func mapAligned(fd, length int) ([]byte, error) {
	// Reserve length plus a huge page of address space, map the file over
	// its first aligned address, give back the rest.
	pg := uintptr(os.Getpagesize())
	mapped := (uintptr(length) + pg - 1) &^ (pg - 1) // what the mapping covers
	span := mapped + hugePage
	base, err := unix.MmapPtr(-1, 0, nil, span, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("conntrack: reserve %d bytes of address space: %w", span, err)
	}
	start := uintptr(base)
	skip := (start+hugePage-1)&^(hugePage-1) - start
	at := unsafe.Add(base, skip)
	p, mapErr := unix.MmapPtr(fd, 0, at, uintptr(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED)
	// Give back what lies outside [at, at+mapped): ours in any case.
	if skip > 0 {
		unix.MunmapPtr(base, skip)
	}
	if tail := span - skip - mapped; tail > 0 {
		unix.MunmapPtr(unsafe.Add(at, mapped), tail)
	}
	if mapErr != nil {
		// [at, at+mapped) stays reserved (PROT_NONE, no memory): a kernel
		// that undid the reservation there on the failure may have given
		// the range to another thread since, whose mapping an munmap
		// here would destroy.
		return nil, fmt.Errorf("conntrack: mmap %d bytes: %w", length, mapErr)
	}
	return unsafe.Slice((*byte)(p), length), nil
}

// isHugeTLB reports whether fd is a hugetlbfs file.
func isHugeTLB(fd int) bool {
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && uint32(fs.Type) == unix.HUGETLBFS_MAGIC
}

// shmemTHP reports whether the kernel backs advised shared memory with
// transparent huge pages: shmem_enabled (for 2 MiB pages, or overall when
// that inherits) is always, within_size, advise or force. It reads
// root/sys.
func shmemTHP(root string) bool {
	dir := root + "/sys/kernel/mm/transparent_hugepage/"
	v := selected(dir + "hugepages-2048kB/shmem_enabled")
	if v == "" || v == "inherit" {
		v = selected(dir + "shmem_enabled")
	}
	switch v {
	case "always", "within_size", "advise", "force":
		return true
	}
	return false
}

// selected is the [bracketed] choice of a sysfs setting, or "".
func selected(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

// PlanPages is what would back workers tables of entries each if they
// were made now, in order: hugetlb pages for as many as the pool's free
// 2 MiB pages hold, then transparent huge pages where shmem_enabled allows
// them, else base pages. It reads root/sys (root "" is this machine; raild
// plan --sysfs gives another tree). raild plan prints it.
func PlanPages(root string, entries uint32, workers int) []Pages {
	per := HugePagesFor(entries)
	// Free pages include those other mappings have reserved but not yet
	// touched: what a new mapping can reserve is free minus reserved.
	dir := root + "/sys/kernel/mm/hugepages/hugepages-2048kB/"
	free := sysfsInt(dir+"free_hugepages") - sysfsInt(dir+"resv_hugepages")
	rest := PagesSmall
	if shmemTHP(root) {
		rest = PagesTHP
	}
	out := make([]Pages, workers)
	for i := range out {
		if free >= per {
			out[i], free = PagesHugeTLB, free-per
		} else {
			out[i] = rest
		}
	}
	return out
}

// sysfsInt is the integer in a sysfs file, or 0.
func sysfsInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}
