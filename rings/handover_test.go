package rings

import (
	"errors"
	"strings"
	"testing"
)

// adoptFake is Adopt over the fake kernel's rings and old's UMEM: a second
// Socket on the same memory, as the process taking over sees it.
func (k *fakeKernel) adoptFake(o Opts, umem []byte, frames []uint8) (*Socket, error) {
	rm := func(i int, size uint32) ringMem {
		return ringMem{producer: &k.idx[i][0], consumer: &k.idx[i][1], flags: &k.idx[i][2], size: size}
	}
	s := &Socket{fd: -1}
	err := s.adopt(o, umem, rm(0, o.FillSize), rm(1, o.CompletionSize), rm(2, o.RxSize), rm(3, o.TxSize),
		k.fill, k.comp, k.rx, k.tx, frames)
	return s, err
}

// busyFake runs traffic through s until frames sit everywhere: free, on
// the fill ring, inside the kernel on both paths, on the rx, tx and
// completion rings. Nothing is left held.
func busyFake(t *testing.T, s *Socket, k *fakeKernel) {
	t.Helper()
	descs := make([]Desc, 8)
	for round := range 20 {
		s.Service()
		k.take(6)
		k.deliver(4, 60)
		n := s.Receive(descs)
		for i := range descs[:n] {
			descs[i] = Desc{Addr: s.FrameBase(descs[i].Addr) + 240, Len: 76}
		}
		sent := s.Transmit(descs[:n/2+round%2])
		for _, d := range descs[sent:n] {
			s.Recycle(d.Addr)
		}
		k.send(3)
		k.complete(2)
	}
	k.deliver(3, 60)
	c := checkSum(t, s, "busy")
	if c.Free == 0 || c.Fill == 0 || c.Rx == 0 || c.Tx == 0 || c.Completion == 0 || c.Held != 0 ||
		k.inFlightRx.len() == 0 || k.inFlight.len() == 0 {
		t.Fatalf("traffic left frames %+v, in flight rx %d tx %d: want some in every place but held",
			c, k.inFlightRx.len(), k.inFlight.len())
	}
}

// TestFakeAdopt: a socket adopted from a stopped one's hand-over sees the
// same frames where they were, and driving it until the kernel has given
// everything back brings every frame home exactly once — none lost, none
// duplicated, no ring error.
func TestFakeAdopt(t *testing.T) {
	for _, start := range []uint32{3, 0xffffffff - 30} {
		o := smallOpts()
		s, k := newFake(t, o, start)
		busyFake(t, s, k)
		h, err := s.handoff()
		if err != nil {
			t.Fatal(err)
		}
		before := s.Frames()
		n, err := k.adoptFake(o, s.umem, h.Frames)
		if err != nil {
			t.Fatal(err)
		}
		if got := checkSum(t, n, "adopted"); got != before {
			t.Fatalf("adopted frames %+v, the old socket had %+v", got, before)
		}
		// The new socket drives on; the old one is never used again.
		descs := make([]Desc, 8)
		for range 50 {
			n.Service()
			k.take(8)
			k.deliver(8, 60)
			m := n.Receive(descs)
			sent := n.Transmit(descs[:m/2])
			for _, d := range descs[sent:m] {
				n.Recycle(d.Addr)
			}
			k.send(8)
			k.complete(8)
		}
		k.send(1 << 20)
		k.complete(1 << 20)
		for k.inFlightRx.len() > 0 || n.rx.pending() > 0 {
			k.deliver(16, 60)
			for m := n.Receive(descs); m > 0; m = n.Receive(descs) {
				for _, d := range descs[:m] {
					n.Recycle(d.Addr)
				}
			}
		}
		n.Service()
		c := checkSum(t, n, "drained")
		if c != (FrameCounts{Free: o.FrameCount - o.FillSize, Fill: o.FillSize}) {
			t.Fatalf("drained after adoption: %+v", c)
		}
		var st Stats
		n.counters(&st)
		if st.RingErrors != 0 || st.BadRecycles != 0 || st.BadTransmits != 0 {
			t.Fatalf("counters after adoption %+v", st)
		}
		// Every frame exactly once: on the free stack or the fill ring.
		seen := map[uint64]int{}
		for _, a := range n.free.addrs[:n.free.n] {
			seen[a]++
		}
		for i := n.fill.cachedCons; i != n.fill.cachedProd; i++ {
			seen[n.fillAddrs[i&n.fill.mask]]++
		}
		for i := range o.FrameCount {
			if a := uint64(i) * uint64(o.FrameSize); seen[a] != 1 {
				t.Fatalf("frame %d found %d times after adoption", i, seen[a])
			}
		}
	}
}

// TestFakeAdoptRefuses: a hand-over with frames held, or one that
// disagrees with the rings, is refused.
func TestFakeAdoptRefuses(t *testing.T) {
	o := smallOpts()
	s, k := newFake(t, o, 0)
	k.take(4)
	k.deliver(4, 60)
	descs := make([]Desc, 4)
	if s.Receive(descs) != 4 {
		t.Fatal("no frames received")
	}
	if _, err := s.handoff(); !errors.Is(err, ErrHeld) {
		t.Fatalf("hand-over with 4 frames held: %v, want ErrHeld", err)
	}
	for _, d := range descs {
		s.Recycle(d.Addr)
	}
	busyFake(t, s, k)
	h, err := s.handoff()
	if err != nil {
		t.Fatal(err)
	}
	// A frame on the fill ring claimed to be on the transmit side.
	bad := append([]uint8(nil), h.Frames...)
	f := k.fill[(atomicLoad(&k.idx[0][0])-1)&uint32(len(k.fill)-1)] >> 11
	bad[f] = FrameTxSide
	if _, err := k.adoptFake(o, s.umem, bad); err == nil || !strings.Contains(err.Error(), "fill ring") {
		t.Fatalf("fill-ring frame claimed tx side: %v", err)
	}
	bad = append([]uint8(nil), h.Frames...)
	bad[0] = stHeld
	if _, err := k.adoptFake(o, s.umem, bad); err == nil {
		t.Fatal("a held frame in the hand-over: no error")
	}
	if _, err := k.adoptFake(o, s.umem, h.Frames[1:]); err == nil {
		t.Fatal("one owner short: no error")
	}
}
