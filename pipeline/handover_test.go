//go:build linux

package pipeline

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAdoptConntrack: a table mapped from another table's memfd holds the
// same entries, and writes through either are seen by the other (one
// memory, as after a takeover between processes).
func TestAdoptConntrack(t *testing.T) {
	c, err := NewConntrack(1024, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var keys []flowKey
	for i := range 100 {
		k := makeFlowKey(addr128{lo: 0xffff0a000001, hi: 0}, addr128{lo: 0xffff0a000002 + uint64(i)}, uint32(1000+i)<<16|80, 6)
		h := uint64(i) * 0x9e3779b97f4a7c15
		_, at := c.lookup(h, &k, 1)
		c.insert(at, &k, tcpACK, uint16(i%7), 42, 1)
		keys = append(keys, k)
	}
	fd, err := unix.Dup(c.File())
	if err != nil {
		t.Fatal(err)
	}
	a, err := AdoptConntrack(fd, 1024, time.Hour, time.Minute, CtState{Live: c.live})
	if err != nil {
		t.Fatal(err)
	}
	if a.live != 100 || a.Len() != c.Len() {
		t.Fatalf("adopted: live %d slots %d, want 100 and %d", a.live, a.Len(), c.Len())
	}
	for i := range keys {
		h := uint64(i) * 0x9e3779b97f4a7c15
		e, _ := a.lookup(h, &keys[i], 2)
		if e == nil || e.backend != uint16(i%7) || e.tag != 42 {
			t.Fatalf("flow %d: adopted entry %+v, want backend %d tag 42", i, e, i%7)
		}
		e.backend = 99
		if o, _ := c.lookup(h, &keys[i], 2); o == nil || o.backend != 99 {
			t.Fatalf("flow %d: a write through the adopted table is not in the original", i)
		}
	}
	other, err := unix.Dup(c.File())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AdoptConntrack(other, 4096, time.Hour, time.Minute, CtState{Bytes: ConntrackBytes(1024)}); err == nil {
		t.Fatal("adopting tables of another size: no error")
	}
	// An earlier version's file is the tables' size exactly, not rounded
	// to huge pages, and its state has no size.
	old, err := unix.MemfdCreate("old-conntrack", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(old, ConntrackBytes(1024)); err != nil {
		t.Fatal(err)
	}
	adopted, err := AdoptConntrack(old, 1024, time.Hour, time.Minute, CtState{})
	if err != nil {
		t.Fatalf("adopting an earlier version's table: %v", err)
	}
	if other, err = unix.Dup(adopted.File()); err != nil {
		t.Fatal(err)
	}
	if _, err := AdoptConntrack(other, 4096, time.Hour, time.Minute, CtState{}); err == nil {
		t.Fatal("adopting an earlier version's table of another size: no error")
	}
}
