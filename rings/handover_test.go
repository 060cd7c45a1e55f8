package rings_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rail-lb/rail/rings"
	"github.com/rail-lb/rail/rings/ringstest"
)

// busyFake runs traffic through s until frames sit everywhere: free, on
// the fill ring, inside the kernel on both paths, on the rx, tx and
// completion rings. Nothing is left held.
func busyFake(t *testing.T, s *rings.Socket, k *ringstest.Kernel) {
	t.Helper()
	descs := make([]rings.Desc, 8)
	for round := range 20 {
		s.Service()
		k.Take(6)
		k.Deliver(4, 60)
		n := s.Receive(descs)
		for i := range descs[:n] {
			descs[i] = rings.Desc{Addr: s.FrameBase(descs[i].Addr) + 240, Len: 76}
		}
		sent := s.Transmit(descs[:n/2+round%2])
		for _, d := range descs[sent:n] {
			s.Recycle(d.Addr)
		}
		k.Send(3)
		k.Complete(2)
	}
	k.Deliver(3, 60)
	c := checkSum(t, s, "busy")
	inRx, inTx := k.InFlight()
	if c.Free == 0 || c.Fill == 0 || c.Rx == 0 || c.Tx == 0 || c.Completion == 0 || c.Held != 0 || inRx == 0 || inTx == 0 {
		t.Fatalf("traffic left frames %+v, in flight rx %d tx %d: want some in every place but held", c, inRx, inTx)
	}
}

// TestFakeAdopt: a socket adopted from a stopped one's hand-over sees the
// same frames where they were, and driving it until the kernel has given
// everything back brings every frame home exactly once — none lost, none
// duplicated, no ring error.
func TestFakeAdopt(t *testing.T) {
	for _, start := range []uint32{3, 0xffffffff - 30} {
		o := smallOpts()
		s, k, err := ringstest.New(o, start)
		if err != nil {
			t.Fatal(err)
		}
		busyFake(t, s, k)
		h, err := s.Handoff()
		if err != nil {
			t.Fatal(err)
		}
		before := s.Frames()
		n, err := k.Adopt(h)
		if err != nil {
			t.Fatal(err)
		}
		if got := checkSum(t, n, "adopted"); got != before {
			t.Fatalf("adopted frames %+v, the old socket had %+v", got, before)
		}
		// The new socket drives on; the old one is never used again.
		descs := make([]rings.Desc, 8)
		for range 50 {
			n.Service()
			k.Take(8)
			k.Deliver(8, 60)
			m := n.Receive(descs)
			sent := n.Transmit(descs[:m/2])
			for _, d := range descs[sent:m] {
				n.Recycle(d.Addr)
			}
			k.Send(8)
			k.Complete(8)
		}
		k.Send(1 << 20)
		k.Complete(1 << 20)
		n.Service()
		drain := func() []uint64 {
			var got []uint64
			for {
				inRx, _ := k.InFlight()
				if inRx == 0 && k.RxPending() == 0 {
					return got
				}
				k.Deliver(16, 60)
				for m := n.Receive(descs); m > 0; m = n.Receive(descs) {
					for _, d := range descs[:m] {
						got = append(got, n.FrameBase(d.Addr))
						n.Recycle(d.Addr)
					}
				}
			}
		}
		drain()
		n.Service()
		c := checkSum(t, n, "drained")
		if c != (rings.FrameCounts{Free: o.FrameCount - o.FillSize, Fill: o.FillSize}) {
			t.Fatalf("drained after adoption: %+v", c)
		}
		if st := n.Counters(); st.RingErrors != 0 || st.BadRecycles != 0 || st.BadTransmits != 0 {
			t.Fatalf("counters after adoption %+v", st)
		}
		// Every frame exactly once: the free ones (Take) and those on the
		// fill ring (taken by the kernel and received).
		free := make([]uint64, o.FrameCount)
		addrs := free[:n.Take(free)]
		k.Take(int(o.FillSize))
		addrs = append(addrs, drain()...)
		seen := map[uint64]int{}
		for _, a := range addrs {
			seen[a]++
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
	s, k, err := ringstest.New(o, 0)
	if err != nil {
		t.Fatal(err)
	}
	k.Take(4)
	k.Deliver(4, 60)
	descs := make([]rings.Desc, 4)
	if s.Receive(descs) != 4 {
		t.Fatal("no frames received")
	}
	if _, err := s.Handoff(); !errors.Is(err, rings.ErrHeld) {
		t.Fatalf("hand-over with 4 frames held: %v, want ErrHeld", err)
	}
	for _, d := range descs {
		s.Recycle(d.Addr)
	}
	busyFake(t, s, k)
	h, err := s.Handoff()
	if err != nil {
		t.Fatal(err)
	}
	// A frame on the fill ring claimed to be on the transmit side.
	bad := append([]uint8(nil), h.Frames...)
	bad[k.FillAddr()/uint64(o.FrameSize)] = rings.FrameTxSide
	if _, err := k.Adopt(rings.Handoff{Opts: o, Frames: bad}); err == nil || !strings.Contains(err.Error(), "fill ring") {
		t.Fatalf("fill-ring frame claimed tx side: %v", err)
	}
	bad = append([]uint8(nil), h.Frames...)
	bad[0] = 2 // held
	if _, err := k.Adopt(rings.Handoff{Opts: o, Frames: bad}); err == nil {
		t.Fatal("a held frame in the hand-over: no error")
	}
	if _, err := k.Adopt(rings.Handoff{Opts: o, Frames: h.Frames[1:]}); err == nil {
		t.Fatal("one owner short: no error")
	}
}
