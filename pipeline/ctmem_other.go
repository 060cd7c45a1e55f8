//go:build !linux

package pipeline

import "errors"

// alloc takes the tables from the heap: off Linux they cannot be passed to
// another process.
func (c *Conntrack) alloc(n4, n6 uint32, fd int) error {
	if fd >= 0 {
		return errors.New("conntrack: adopting a table needs Linux")
	}
	c.mem, c.fd = make([]byte, tablesBytes(n4, n6)), -1
	c.tables(c.mem, n4, n6)
	return nil
}

// closeTableFile: off Linux no table file is ever passed.
func closeTableFile(int) {}

// Close lets the tables go (to the collector, off Linux). c must not be
// used after.
func (c *Conntrack) Close() { c.mem, c.buckets, c.buckets6 = nil, nil, nil }

// PlanPages: off Linux the tables are on the heap's pages.
func PlanPages(root string, entries uint32, workers int) []Pages { return make([]Pages, workers) }
