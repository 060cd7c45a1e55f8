package pipeline

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// alloc maps the tables from a memfd: a new one (fd < 0) or one a process
// passed over (AdoptConntrack), which must be the size of these tables.
// The mapping and the file go when the table is unreachable.
func (c *Conntrack) alloc(n4, n6 uint32, fd int) error {
	size := ctBytes(n4, n6)
	if fd < 0 {
		var err error
		if fd, err = unix.MemfdCreate("rail-conntrack", unix.MFD_CLOEXEC); err != nil {
			return fmt.Errorf("conntrack: memfd_create: %w", err)
		}
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			unix.Close(fd)
			return fmt.Errorf("conntrack: size the memfd to %d bytes: %w", size, err)
		}
	} else {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return fmt.Errorf("conntrack: fstat the passed table fd %d: %w", fd, err)
		}
		if st.Size != int64(size) {
			unix.Close(fd)
			return fmt.Errorf("conntrack: the passed table is %d bytes, these tables take %d (conntrack.entries_per_core differs)", st.Size, size)
		}
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("conntrack: mmap %d bytes: %w", size, err)
	}
	c.mem, c.fd = mem, fd
	c.tables(mem, n4, n6)
	runtime.AddCleanup(c, func(r ctMapping) {
		unix.Munmap(r.mem)
		unix.Close(r.fd)
	}, ctMapping{mem, fd})
	return nil
}

type ctMapping struct {
	mem []byte
	fd  int
}
