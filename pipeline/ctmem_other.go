//go:build !linux

package pipeline

import "errors"

// alloc takes the tables from the heap: off Linux they cannot be passed to
// another process.
func (c *Conntrack) alloc(n4, n6 uint32, fd int) error {
	if fd >= 0 {
		return errors.New("conntrack: adopting a table needs Linux")
	}
	c.mem, c.fd = make([]byte, ctBytes(n4, n6)), -1
	c.tables(c.mem, n4, n6)
	return nil
}
