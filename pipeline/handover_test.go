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
	// An earlier version's file is the connection tables' size exactly:
	// no fragment table, not rounded to huge pages; its state has no size.
	old, err := unix.MemfdCreate("old-conntrack", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	n4, n6 := ctSlots(1024)
	if err := unix.Ftruncate(old, int64(ctBytes(n4/ctWays, n6/ctWays))); err != nil {
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

// TestAdoptFragments: a datagram whose first fragment went through one
// worker has its later fragments follow it through the worker that
// adopted the table (a takeover between the fragments), and a table from
// an earlier version, whose file had no fragment table, starts with an
// empty one.
func TestAdoptFragments(t *testing.T) {
	first, later := defaultInner(), defaultInner()
	first.mf, first.df = true, false
	later.fragOffset, later.df = 3, false
	adopt := func(t *testing.T, from *Worker, fd int) *Worker {
		t.Helper()
		st := from.Handoff()
		ct, err := AdoptConntrack(fd, 1024, time.Hour, 30*time.Second, st)
		if err != nil {
			t.Fatal(err)
		}
		w := NewWorker(ct)
		w.Begin(from.snap, time.Now())
		w.Resume(st)
		return w
	}
	old := newTestWorker(t, testConfig()) // a table of 1024 entries
	var want []uint16
	for i := range 50 {
		first.sport = uint16(20000 + i)
		r := old.Process(packetFor(frameWithID(t, first, false, uint16(700+i))))
		if r.Verdict != Tx {
			t.Fatalf("first fragment %d: %v/%v", i, r.Verdict, r.Reason)
		}
		want = append(want, r.Backend)
	}
	fd, err := unix.Dup(old.ct.File())
	if err != nil {
		t.Fatal(err)
	}
	w := adopt(t, old, fd)
	for i := range 50 {
		later.sport = uint16(20000 + i)
		if r := w.Process(packetFor(frameWithID(t, later, false, uint16(700+i)))); r.Verdict != Tx || r.Backend != want[i] {
			t.Fatalf("later fragment %d after the takeover: %v/%v backend %d, the first went to %d", i, r.Verdict, r.Reason, r.Backend, want[i])
		}
	}
	w.Flush()
	if h, m := w.Stats().FragHits.Load(), w.Stats().FragMisses.Load(); h != 50 || m != 0 {
		t.Fatalf("after the takeover: fragment hits %d misses %d, want 50 and 0", h, m)
	}

	// An earlier version's file: the connection tables alone.
	n4, n6 := ctSlots(1024)
	prev, err := unix.MemfdCreate("old-conntrack", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(prev, int64(ctBytes(n4/ctWays, n6/ctWays))); err != nil {
		t.Fatal(err)
	}
	w2 := adopt(t, old, prev)
	if len(w2.ct.frags.entries) != fragEntries {
		t.Fatalf("adopted from an earlier version: %d fragment entries", len(w2.ct.frags.entries))
	}
	later.sport = 20000
	w2.Process(packetFor(frameWithID(t, later, false, 700)))
	w2.Flush()
	if m := w2.Stats().FragMisses.Load(); m != 1 {
		t.Fatalf("adopted from an earlier version: %d fragment misses, want 1 (an empty fragment table)", m)
	}
}
