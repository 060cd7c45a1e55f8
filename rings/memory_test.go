package rings_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rail-lb/rail/rings"
	"github.com/rail-lb/rail/rings/ringstest"
)

// The socket's accounting, driven through the fake kernel of package
// ringstest.

// frameCount is smallOpts' FrameCount.
const frameCount = 64

func newFake(t testing.TB, o rings.Opts, start uint32) (*rings.Socket, *ringstest.Kernel) {
	t.Helper()
	s, k, err := ringstest.New(o, start)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, k
}

func inFlightRx(k *ringstest.Kernel) int { rx, _ := k.InFlight(); return rx }

func smallOpts() rings.Opts {
	o := rings.DefaultOpts()
	o.FrameSize = 2048
	o.FrameCount = frameCount
	o.FillSize, o.CompletionSize, o.RxSize, o.TxSize = 16, 16, 16, 16
	return o
}

func checkSum(t *testing.T, s *rings.Socket, where string) rings.FrameCounts {
	t.Helper()
	c := s.Frames()
	if c.Sum() != frameCount {
		t.Fatalf("%s: %+v sums to %d, want %d", where, c, c.Sum(), frameCount)
	}
	return c
}

func TestFakeFrameAccounting(t *testing.T) {
	for _, start := range []uint32{0, 0xffffffff - 20} {
		s, k := newFake(t, smallOpts(), start)
		if c := checkSum(t, s, "at rest"); c != (rings.FrameCounts{Free: 48, Fill: 16}) {
			t.Fatalf("at rest: %+v", c)
		}
		descs := make([]rings.Desc, 8)
		for round := 0; round < 200; round++ {
			k.Take(5)
			checkSum(t, s, "after take")
			k.Deliver(4, 60)
			c := checkSum(t, s, "after deliver")
			if c.Rx != uint32(k.RxPending()) {
				t.Fatalf("Rx = %d", c.Rx)
			}
			n := s.Receive(descs)
			for i := 0; i < n; i++ {
				buf, off := s.Frame(descs[i].Addr)
				if len(buf) != 2048 || off != 256 {
					t.Fatalf("Frame: len %d off %d", len(buf), off)
				}
				buf[off] = byte(round)
			}
			checkSum(t, s, "after receive")
			// Transmit half (moved 16 bytes forward), recycle the rest.
			half := n / 2
			for i := 0; i < half; i++ {
				descs[i] = rings.Desc{Addr: s.FrameBase(descs[i].Addr) + 240, Len: 76}
			}
			sent := s.Transmit(descs[:half])
			for i := sent; i < n; i++ {
				s.Recycle(descs[i].Addr)
			}
			checkSum(t, s, "after transmit")
			k.Send(3)
			checkSum(t, s, "after send")
			k.Complete(2)
			checkSum(t, s, "after complete")
			s.Service()
			checkSum(t, s, "after service")
		}
		// Drain everything: the kernel sends and completes all, delivers
		// nothing more; everything must come back to free + fill.
		k.Send(1 << 20)
		k.Complete(1 << 20)
		for inFlightRx(k) > 0 {
			k.Deliver(16, 60)
			for n := s.Receive(descs); n > 0; n = s.Receive(descs) {
				for _, d := range descs[:n] {
					s.Recycle(d.Addr)
				}
			}
		}
		s.Service()
		c := checkSum(t, s, "drained")
		if c.Held != 0 || c.Tx != 0 || c.Completion != 0 || c.Rx != 0 || c.Fill != 16 {
			t.Fatalf("drained (start %#x): %+v", start, c)
		}
		if st := s.Counters(); st != (rings.Stats{}) {
			t.Errorf("unexpected counters %+v", st)
		}
	}
}

func TestFakeMisuse(t *testing.T) {
	s, k := newFake(t, smallOpts(), 7)
	k.Take(4)
	k.Deliver(4, 100)
	descs := make([]rings.Desc, 4)
	if n := s.Receive(descs); n != 4 {
		t.Fatalf("Receive = %d", n)
	}
	// A frame never received, a double recycle, a transmit of a recycled
	// frame, a too-long and an out-of-UMEM descriptor are all refused.
	s.Recycle(descs[0].Addr)
	s.Recycle(descs[0].Addr)
	s.Recycle(uint64(63) * 2048) // on the free stack
	s.Recycle(1 << 40)
	if n := s.Transmit([]rings.Desc{descs[0]}); n != 0 {
		t.Errorf("Transmit of a recycled frame accepted")
	}
	if n := s.Transmit([]rings.Desc{{Addr: descs[1].Addr, Len: 2048}}); n != 0 {
		t.Errorf("Transmit past the frame end accepted")
	}
	if n := s.Transmit([]rings.Desc{{Addr: descs[1].Addr, Len: 0}}); n != 0 {
		t.Errorf("Transmit of Len 0 accepted")
	}
	if n := s.Transmit([]rings.Desc{{Addr: descs[1].Addr, Len: 10, Options: 1}}); n != 0 {
		t.Errorf("Transmit with Options accepted")
	}
	if n := s.Transmit([]rings.Desc{{Addr: 1 << 40, Len: 10}}); n != 0 {
		t.Errorf("Transmit outside the UMEM accepted")
	}
	// A batch stops at the first bad descriptor; the same frame twice is bad.
	if n := s.Transmit([]rings.Desc{descs[1], descs[2], descs[1], descs[3]}); n != 2 {
		t.Errorf("Transmit = %d, want 2", n)
	}
	st := s.Counters()
	if st.BadRecycles != 3 || st.BadTransmits != 6 {
		t.Errorf("counters %+v", st)
	}
	s.Recycle(descs[3].Addr + 17) // any address inside the frame
	c := checkSum(t, s, "after misuse")
	if c.Held != 0 || c.Tx != 2 {
		t.Errorf("%+v", c)
	}
	// The kernel returning an address it was never given is skipped.
	k.CompleteAddr(5 * 2048)
	s.Service()
	st = s.Counters()
	if st.RingErrors != 1 {
		t.Errorf("RingErrors = %d", st.RingErrors)
	}
	checkSum(t, s, "after bogus completion")
}

func TestFakeTxRingFull(t *testing.T) {
	o := smallOpts()
	o.TxSize = 4
	s, k := newFake(t, o, 0)
	k.Take(16)
	k.Deliver(16, 60)
	descs := make([]rings.Desc, 16)
	n := s.Receive(descs)
	if n != 16 {
		t.Fatalf("Receive = %d", n)
	}
	if got := s.Transmit(descs[:n]); got != 4 {
		t.Fatalf("Transmit into a 4-slot ring = %d", got)
	}
	if got := s.Transmit(descs[4:n]); got != 0 {
		t.Fatalf("Transmit into a full ring = %d", got)
	}
	k.Send(2)
	if got := s.Transmit(descs[4:n]); got != 2 {
		t.Fatalf("Transmit after 2 sent = %d", got)
	}
	if c := checkSum(t, s, "tx full"); c.Tx != 6 || c.Held != 10 {
		t.Errorf("%+v", c)
	}
}

// TestFramesConcurrent reads Frames from another goroutine while the
// worker moves frames around (run with -race).
func TestFramesConcurrent(t *testing.T) {
	s, k := newFake(t, smallOpts(), 0xfffffff0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if c := s.Frames(); c.Sum() != 64 {
				bad.Store(c)
				return
			}
		}
	}()
	descs := make([]rings.Desc, 8)
	for i := 0; i < 20000; i++ {
		k.Take(3)
		k.Deliver(3, 64)
		n := s.Receive(descs)
		if sent := s.Transmit(descs[:n]); sent < n {
			for _, d := range descs[sent:n] {
				s.Recycle(d.Addr)
			}
		}
		k.Send(3)
		k.Complete(3)
		s.Service()
	}
	stop.Store(true)
	wg.Wait()
	if c := bad.Load(); c != nil {
		t.Fatalf("Frames from another goroutine: %+v", c)
	}
}

// TestNoAllocs measures the worker's whole iteration — the fake kernel
// delivering, Receive, Transmit, Recycle, the kernel sending and
// completing, Service — and checks that every run really moved frames both
// ways, in need_wakeup mode and in busy-poll mode (where Service makes the
// iteration's system call: on the fake's fd -1 it fails with EBADF, which
// is counted, not allocated).
func TestNoAllocs(t *testing.T) {
	for _, busy := range []bool{false, true} {
		s, k := newFake(t, smallOpts(), 0)
		s.SetBusy(busy)
		k.SetTxNeedWakeup(true) // copy mode: tx always asks
		descs := make([]rings.Desc, 8)
		var received, transmitted, runs int
		iteration := func() {
			runs++
			k.Take(4)
			k.Deliver(4, 64)
			n := s.Receive(descs)
			received += n
			sent := s.Transmit(descs[:n/2])
			transmitted += sent
			for _, d := range descs[sent:n] {
				s.Recycle(d.Addr)
			}
			k.Send(4)
			k.Complete(4)
			s.Service()
		}
		allocs := testing.AllocsPerRun(1000, iteration)
		if allocs != 0 {
			t.Errorf("busy %v: an iteration allocates %v times, want 0", busy, allocs)
		}
		if received != 4*runs || transmitted != 2*runs {
			t.Errorf("busy %v: %d runs received %d and transmitted %d frames, want %d and %d",
				busy, runs, received, transmitted, 4*runs, 2*runs)
		}
		st := s.Counters()
		if calls := st.TxKicks + st.FillKicks + st.BusyPolls; busy && calls > uint64(runs) {
			t.Errorf("busy poll: %d system calls in %d iterations, want at most one each", calls, runs)
		}
		checkSum(t, s, "after the runs")
	}
}

// TestFakeBusyPollCalls: with busy polling, Transmit makes no system call
// and Service makes exactly the one the rings ask for: sendto while
// descriptors wait on the tx ring (busy polling rx too), else recvfrom
// when the rx ring is empty, else none.
func TestFakeBusyPollCalls(t *testing.T) {
	s, k := newFake(t, smallOpts(), 0xfffffff0)
	s.SetBusy(true)
	k.SetTxNeedWakeup(true)
	calls := func() (tx, rx uint64) { st := s.Counters(); return st.TxKicks, st.BusyPolls }
	expect := func(where string, tx0, rx0, dtx, drx uint64) {
		t.Helper()
		tx, rx := calls()
		if tx-tx0 != dtx || rx-rx0 != drx {
			t.Errorf("%s: %d sendto and %d recvfrom, want %d and %d", where, tx-tx0, rx-rx0, dtx, drx)
		}
	}
	tx0, rx0 := calls()
	s.Service() // nothing received yet: run the NAPI
	expect("empty rx ring", tx0, rx0, 0, 1)

	k.Take(8)
	k.Deliver(8, 64)
	tx0, rx0 = calls()
	s.Service() // frames wait on rx: take them first, no call
	expect("frames on rx", tx0, rx0, 0, 0)
	descs := make([]rings.Desc, 8)
	n := s.Receive(descs[:4])
	if sent := s.Transmit(descs[:n]); sent != n {
		t.Fatalf("Transmit = %d of %d", sent, n)
	}
	expect("Transmit", tx0, rx0, 0, 0)
	s.Service() // descriptors wait on tx: sendto (it also busy polls rx)
	expect("tx waiting", tx0, rx0, 1, 0)
	k.Send(4)
	k.Complete(4)
	n = s.Receive(descs)
	for _, d := range descs[:n] {
		s.Recycle(d.Addr)
	}
	tx0, rx0 = calls()
	s.Service() // tx drained, rx empty: recvfrom
	expect("all sent, rx empty", tx0, rx0, 0, 1)
	checkSum(t, s, "busy")
}

func TestFrameOutside(t *testing.T) {
	s, _ := newFake(t, smallOpts(), 0)
	if buf, off := s.Frame(64 * 2048); buf != nil || off != 0 {
		t.Errorf("Frame past the UMEM = %d bytes, %d", len(buf), off)
	}
	if buf, off := s.Frame(63*2048 + 5); len(buf) != 2048 || off != 5 {
		t.Errorf("last frame = %d bytes, %d", len(buf), off)
	}
}

// TestFakeTake: frames taken for transmit-only use are held, go out with
// Transmit, come back through completion and Service, and can be taken
// again; the fill ring keeps what it has; the accounting stays exact.
func TestFakeTake(t *testing.T) {
	for _, start := range []uint32{0, 0xffffffff - 20} {
		o := smallOpts() // 64 frames, fill ring 16: 48 free
		s, k := newFake(t, o, start)
		addrs := make([]uint64, 100)
		if n := s.Take(addrs[:0]); n != 0 {
			t.Fatalf("Take(0) = %d", n)
		}
		n := s.Take(addrs[:10])
		if n != 10 {
			t.Fatalf("Take(10) = %d", n)
		}
		seen := map[uint64]bool{}
		for _, a := range addrs[:n] {
			if a%2048 != 0 || a >= 64*2048 || seen[a] {
				t.Fatalf("Take gave %#x (not a distinct frame base)", a)
			}
			seen[a] = true
			buf, off := s.Frame(a)
			if len(buf) != 2048 || off != 0 {
				t.Fatalf("Frame(%#x): len %d off %d", a, len(buf), off)
			}
		}
		if c := checkSum(t, s, "after take"); c != (rings.FrameCounts{Free: 38, Fill: 16, Held: 10}) {
			t.Fatalf("after take: %+v", c)
		}
		// More than is free: only what is free.
		if m := s.Take(addrs[n:]); m != 38 {
			t.Fatalf("Take(90) with 38 free = %d", m)
		}
		n += 38
		if c := checkSum(t, s, "all taken"); c.Free != 0 || c.Held != 48 {
			t.Fatalf("all taken: %+v", c)
		}
		if m := s.Take(addrs[:1]); m != 0 {
			t.Fatalf("Take with nothing free = %d", m)
		}
		// Transmit 16 (the tx ring's size), give 2 back, keep the rest.
		descs := make([]rings.Desc, 16)
		for i := range descs {
			descs[i] = rings.Desc{Addr: addrs[i] + 64, Len: 60}
		}
		if sent := s.Transmit(descs); sent != 16 {
			t.Fatalf("Transmit = %d", sent)
		}
		s.Recycle(addrs[16])
		s.Recycle(addrs[17])
		if c := checkSum(t, s, "after transmit"); c.Tx != 16 || c.Held != 30 || c.Free != 2 {
			t.Fatalf("after transmit: %+v", c)
		}
		// The kernel sends and completes 16; Service reaps them to the
		// free stack and leaves the full fill ring alone.
		k.Send(16)
		k.Complete(16)
		s.Service()
		if c := checkSum(t, s, "after service"); c != (rings.FrameCounts{Free: 18, Fill: 16, Held: 30}) {
			t.Fatalf("after service: %+v", c)
		}
		if m := s.Take(addrs[:18]); m != 18 {
			t.Fatalf("Take after completion = %d", m)
		}
		// A taken frame is held: transmitting it twice or recycling it
		// after transmit is refused and counted.
		if sent := s.Transmit([]rings.Desc{{Addr: addrs[0], Len: 60}}); sent != 1 {
			t.Fatalf("Transmit of a taken frame = %d", sent)
		}
		if sent := s.Transmit([]rings.Desc{{Addr: addrs[0], Len: 60}}); sent != 0 {
			t.Fatalf("second Transmit of the same frame = %d", sent)
		}
		s.Recycle(addrs[0])
		st := s.Counters()
		if st.BadTransmits != 1 || st.BadRecycles != 1 {
			t.Fatalf("counters %+v", st)
		}
		checkSum(t, s, "after misuse")
	}
}

func TestTakeNoAllocs(t *testing.T) {
	s, _ := newFake(t, smallOpts(), 0)
	addrs := make([]uint64, 8)
	allocs := testing.AllocsPerRun(1000, func() {
		n := s.Take(addrs)
		for _, a := range addrs[:n] {
			s.Recycle(a)
		}
	})
	if allocs != 0 {
		t.Errorf("Take/Recycle: %v allocs per run, want 0", allocs)
	}
}
