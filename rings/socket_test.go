package rings

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeKernel backs a Socket with ordinary memory and plays the kernel's
// side of the four rings, so that the accounting can be tested without a NIC.
// It allocates nothing after newFake, so that TestNoAllocs can measure a
// loop that really receives and transmits through it.
type fakeKernel struct {
	idx                  [4][3]uint32 // fill, comp, rx, tx × producer, consumer, flags
	fill, comp           []uint64
	rx, tx               []Desc
	fillCons, txCons     uint32 // kernel-side cached consumers
	rxProd, compProd     uint32 // kernel-side cached producers
	inFlightRx, inFlight fifo   // taken from fill / tx, not yet on rx / completion
}

// fifo is a fixed-capacity queue of frame addresses.
type fifo struct {
	a          []uint64
	head, tail int // a[head%len] is the oldest; tail-head entries
}

func newFifo(n uint32) fifo   { return fifo{a: make([]uint64, n)} }
func (q *fifo) len() int      { return q.tail - q.head }
func (q *fifo) push(v uint64) { q.a[q.tail%len(q.a)] = v; q.tail++ }
func (q *fifo) peek() uint64  { return q.a[q.head%len(q.a)] }
func (q *fifo) pop()          { q.head++ }
func (q *fifo) full() bool    { return q.len() == len(q.a) }

func newFake(t testing.TB, o Opts, start uint32) (*Socket, *fakeKernel) {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{
		fill: make([]uint64, o.FillSize), comp: make([]uint64, o.CompletionSize),
		rx: make([]Desc, o.RxSize), tx: make([]Desc, o.TxSize),
		inFlightRx: newFifo(o.FrameCount), inFlight: newFifo(o.FrameCount),
	}
	// Start every index near the 2^32 wrap to exercise it.
	for i := range k.idx {
		k.idx[i][0], k.idx[i][1] = start, start
	}
	k.fillCons, k.txCons, k.rxProd, k.compProd = start, start, start, start
	rm := func(i int, size uint32) ringMem {
		return ringMem{producer: &k.idx[i][0], consumer: &k.idx[i][1], flags: &k.idx[i][2], size: size}
	}
	s := &Socket{fd: -1}
	s.init(o, make([]byte, int(o.FrameSize)*int(o.FrameCount)),
		rm(0, o.FillSize), rm(1, o.CompletionSize), rm(2, o.RxSize), rm(3, o.TxSize),
		k.fill, k.comp, k.rx, k.tx)
	return s, k
}

// take moves up to n frames from the fill ring into the kernel ("in flight").
func (k *fakeKernel) take(n int) int {
	prod := atomic.LoadUint32(&k.idx[0][0])
	i := 0
	for ; i < n && k.fillCons != prod; i++ {
		k.inFlightRx.push(k.fill[k.fillCons&uint32(len(k.fill)-1)])
		k.fillCons++
	}
	atomic.StoreUint32(&k.idx[0][1], k.fillCons)
	return i
}

// deliver writes up to n in-flight frames to the rx ring with data at
// offset 256 and the given length.
func (k *fakeKernel) deliver(n int, length uint32) int {
	cons := atomic.LoadUint32(&k.idx[2][1])
	i := 0
	for ; i < n && k.inFlightRx.len() > 0 && k.rxProd-cons < uint32(len(k.rx)); i++ {
		k.rx[k.rxProd&uint32(len(k.rx)-1)] = Desc{Addr: k.inFlightRx.peek() + 256, Len: length}
		k.inFlightRx.pop()
		k.rxProd++
	}
	atomic.StoreUint32(&k.idx[2][0], k.rxProd)
	return i
}

// send consumes up to n tx descriptors; complete puts up to n sent frames
// on the completion ring.
func (k *fakeKernel) send(n int) int {
	prod := atomic.LoadUint32(&k.idx[3][0])
	i := 0
	for ; i < n && k.txCons != prod; i++ {
		k.inFlight.push(k.tx[k.txCons&uint32(len(k.tx)-1)].Addr)
		k.txCons++
	}
	atomic.StoreUint32(&k.idx[3][1], k.txCons)
	return i
}

func (k *fakeKernel) complete(n int) int {
	cons := atomic.LoadUint32(&k.idx[1][1])
	i := 0
	for ; i < n && k.inFlight.len() > 0 && k.compProd-cons < uint32(len(k.comp)); i++ {
		k.comp[k.compProd&uint32(len(k.comp)-1)] = k.inFlight.peek()
		k.inFlight.pop()
		k.compProd++
	}
	atomic.StoreUint32(&k.idx[1][0], k.compProd)
	return i
}

func smallOpts() Opts {
	o := DefaultOpts()
	o.FrameSize = 2048
	o.FrameCount = 64
	o.FillSize, o.CompletionSize, o.RxSize, o.TxSize = 16, 16, 16, 16
	return o
}

func checkSum(t *testing.T, s *Socket, where string) FrameCounts {
	t.Helper()
	c := s.Frames()
	if c.Sum() != s.frameCount {
		t.Fatalf("%s: %+v sums to %d, want %d", where, c, c.Sum(), s.frameCount)
	}
	return c
}

func TestFakeFrameAccounting(t *testing.T) {
	for _, start := range []uint32{0, 0xffffffff - 20} {
		s, k := newFake(t, smallOpts(), start)
		if c := checkSum(t, s, "at rest"); c != (FrameCounts{Free: 48, Fill: 16}) {
			t.Fatalf("at rest: %+v", c)
		}
		descs := make([]Desc, 8)
		for round := 0; round < 200; round++ {
			k.take(5)
			checkSum(t, s, "after take")
			k.deliver(4, 60)
			c := checkSum(t, s, "after deliver")
			if c.Rx != uint32(k.rxProd-atomic.LoadUint32(&k.idx[2][1])) {
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
				descs[i] = Desc{Addr: s.FrameBase(descs[i].Addr) + 240, Len: 76}
			}
			sent := s.Transmit(descs[:half])
			for i := sent; i < n; i++ {
				s.Recycle(descs[i].Addr)
			}
			checkSum(t, s, "after transmit")
			k.send(3)
			checkSum(t, s, "after send")
			k.complete(2)
			checkSum(t, s, "after complete")
			s.Service()
			checkSum(t, s, "after service")
		}
		// Drain everything: the kernel sends and completes all, delivers
		// nothing more; everything must come back to free + fill.
		k.send(1 << 20)
		k.complete(1 << 20)
		for k.inFlightRx.len() > 0 {
			k.deliver(16, 60)
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
		var st Stats
		s.counters(&st)
		if st != (Stats{}) {
			t.Errorf("unexpected counters %+v", st)
		}
	}
}

func TestFakeMisuse(t *testing.T) {
	s, k := newFake(t, smallOpts(), 7)
	k.take(4)
	k.deliver(4, 100)
	descs := make([]Desc, 4)
	if n := s.Receive(descs); n != 4 {
		t.Fatalf("Receive = %d", n)
	}
	// A frame never received, a double recycle, a transmit of a recycled
	// frame, a too-long and an out-of-UMEM descriptor are all refused.
	s.Recycle(descs[0].Addr)
	s.Recycle(descs[0].Addr)
	s.Recycle(uint64(63) * 2048) // on the free stack
	s.Recycle(1 << 40)
	if n := s.Transmit([]Desc{descs[0]}); n != 0 {
		t.Errorf("Transmit of a recycled frame accepted")
	}
	if n := s.Transmit([]Desc{{Addr: descs[1].Addr, Len: 2048}}); n != 0 {
		t.Errorf("Transmit past the frame end accepted")
	}
	if n := s.Transmit([]Desc{{Addr: descs[1].Addr, Len: 0}}); n != 0 {
		t.Errorf("Transmit of Len 0 accepted")
	}
	if n := s.Transmit([]Desc{{Addr: descs[1].Addr, Len: 10, Options: 1}}); n != 0 {
		t.Errorf("Transmit with Options accepted")
	}
	if n := s.Transmit([]Desc{{Addr: 1 << 40, Len: 10}}); n != 0 {
		t.Errorf("Transmit outside the UMEM accepted")
	}
	// A batch stops at the first bad descriptor; the same frame twice is bad.
	if n := s.Transmit([]Desc{descs[1], descs[2], descs[1], descs[3]}); n != 2 {
		t.Errorf("Transmit = %d, want 2", n)
	}
	var st Stats
	s.counters(&st)
	if st.BadRecycles != 3 || st.BadTransmits != 6 {
		t.Errorf("counters %+v", st)
	}
	s.Recycle(descs[3].Addr + 17) // any address inside the frame
	c := checkSum(t, s, "after misuse")
	if c.Held != 0 || c.Tx != 2 {
		t.Errorf("%+v", c)
	}
	// The kernel returning an address it was never given is skipped.
	k.comp[k.compProd&15] = 5 * 2048
	k.compProd++
	atomic.StoreUint32(&k.idx[1][0], k.compProd)
	s.Service()
	s.counters(&st)
	if st.RingErrors != 1 {
		t.Errorf("RingErrors = %d", st.RingErrors)
	}
	checkSum(t, s, "after bogus completion")
}

func TestFakeTxRingFull(t *testing.T) {
	o := smallOpts()
	o.TxSize = 4
	s, k := newFake(t, o, 0)
	k.take(16)
	k.deliver(16, 60)
	descs := make([]Desc, 16)
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
	k.send(2)
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
	descs := make([]Desc, 8)
	for i := 0; i < 20000; i++ {
		k.take(3)
		k.deliver(3, 64)
		n := s.Receive(descs)
		if sent := s.Transmit(descs[:n]); sent < n {
			for _, d := range descs[sent:n] {
				s.Recycle(d.Addr)
			}
		}
		k.send(3)
		k.complete(3)
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
		s.busy = busy
		atomic.StoreUint32(&k.idx[3][2], ringNeedWakeup) // copy mode: tx always asks
		descs := make([]Desc, 8)
		var received, transmitted, runs int
		iteration := func() {
			runs++
			k.take(4)
			k.deliver(4, 64)
			n := s.Receive(descs)
			received += n
			sent := s.Transmit(descs[:n/2])
			transmitted += sent
			for _, d := range descs[sent:n] {
				s.Recycle(d.Addr)
			}
			k.send(4)
			k.complete(4)
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
		var st Stats
		s.counters(&st)
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
	s.busy = true
	atomic.StoreUint32(&k.idx[3][2], ringNeedWakeup)
	calls := func() (tx, rx uint64) { return s.txKicks.Load(), s.busyPolls.Load() }
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

	k.take(8)
	k.deliver(8, 64)
	tx0, rx0 = calls()
	s.Service() // frames wait on rx: take them first, no call
	expect("frames on rx", tx0, rx0, 0, 0)
	descs := make([]Desc, 8)
	n := s.Receive(descs[:4])
	if sent := s.Transmit(descs[:n]); sent != n {
		t.Fatalf("Transmit = %d of %d", sent, n)
	}
	expect("Transmit", tx0, rx0, 0, 0)
	s.Service() // descriptors wait on tx: sendto (it also busy polls rx)
	expect("tx waiting", tx0, rx0, 1, 0)
	k.send(4)
	k.complete(4)
	n = s.Receive(descs)
	for _, d := range descs[:n] {
		s.Recycle(d.Addr)
	}
	tx0, rx0 = calls()
	s.Service() // tx drained, rx empty: recvfrom
	expect("all sent, rx empty", tx0, rx0, 0, 1)
	checkSum(t, s, "busy")
}

func TestOptsValidate(t *testing.T) {
	if err := DefaultOpts().Validate(); err != nil {
		t.Fatalf("DefaultOpts: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Opts)
		want string
	}{
		{"frame size 3000", func(o *Opts) { o.FrameSize = 3000 }, "FrameSize 3000: must be 2048 or 4096"},
		{"frame size 8192", func(o *Opts) { o.FrameSize = 8192 }, "FrameSize 8192"},
		{"no frames", func(o *Opts) { o.FrameCount = 0 }, "FrameCount 0"},
		{"too many frames", func(o *Opts) { o.FrameCount = 1<<20 + 1 }, "FrameCount 1048577"},
		{"headroom too big", func(o *Opts) { o.FrameSize = 2048; o.Headroom = 512 }, "Headroom 512: leaves 1280 bytes"},
		{"fill not power of two", func(o *Opts) { o.FillSize = 1000 }, "FillSize 1000: must be a power of two between 1 and 1048576 (try 1024)"},
		{"completion zero", func(o *Opts) { o.CompletionSize = 0 }, "CompletionSize 0"},
		{"rx too big", func(o *Opts) { o.RxSize = 1 << 21 }, "RxSize 2097152"},
		{"tx not power of two", func(o *Opts) { o.TxSize = 3 }, "TxSize 3"},
		{"zero copy 7", func(o *Opts) { o.ZeroCopy = 7 }, "ZeroCopy 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := DefaultOpts()
			c.edit(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalidOpts) {
				t.Errorf("Validate() = %v, want an ErrInvalidOpts containing %q", err, c.want)
			}
		})
	}
	o := DefaultOpts()
	o.FrameSize, o.Headroom = 2048, 2048-256-1518
	if err := o.Validate(); err != nil {
		t.Errorf("largest headroom for 2048-byte frames: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, z := range []ZeroCopy{ZeroCopyAuto, ZeroCopyOn, ZeroCopyOff} {
		if got, err := ParseZeroCopy(z.String()); err != nil || got != z {
			t.Errorf("ParseZeroCopy(%q) = %v, %v", z.String(), got, err)
		}
	}
	for _, m := range []XDPMode{XDPAuto, XDPNative, XDPGeneric} {
		if got, err := ParseXDPMode(m.String()); err != nil || got != m {
			t.Errorf("ParseXDPMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseZeroCopy("yes"); err == nil {
		t.Error("ParseZeroCopy(yes) succeeded")
	}
	if _, err := ParseXDPMode("offload"); err == nil {
		t.Error("ParseXDPMode(offload) succeeded")
	}
	if ZeroCopy(9).String() != "ZeroCopy(9)" || XDPMode(9).String() != "XDPMode(9)" {
		t.Error("String of unknown values")
	}
}

func TestRingWrap(t *testing.T) {
	var p, c, f uint32 = 0xfffffffe, 0xfffffffe, 0
	r := newRing(&p, &c, &f, 4)
	if n := r.reserve(8); n != 4 {
		t.Fatalf("reserve on empty 4-ring = %d", n)
	}
	r.submit(3) // producer wraps to 1
	if p != 1 {
		t.Fatalf("producer = %#x", p)
	}
	if n := r.reserve(4); n != 1 {
		t.Fatalf("reserve with 3 used = %d", n)
	}
	var q = r // consumer view of the same indices
	if n := q.peek(8); n != 3 {
		t.Fatalf("peek = %d", n)
	}
	q.release(2)
	if n := r.reserve(4); n != 3 {
		t.Fatalf("reserve after release = %d", n)
	}
	if r.pending() != 1 {
		t.Fatalf("pending = %d", r.pending())
	}
	f = ringNeedWakeup
	if !r.needWakeup() {
		t.Fatal("needWakeup")
	}
}

func TestFreeStack(t *testing.T) {
	s := newFreeStack(2)
	if _, ok := s.pop(); ok {
		t.Fatal("pop from empty")
	}
	if !s.push(1) || !s.push(2) || s.push(3) {
		t.Fatal("push beyond capacity must fail, not grow")
	}
	if a, _ := s.pop(); a != 2 {
		t.Fatal("LIFO")
	}
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
		if c := checkSum(t, s, "after take"); c != (FrameCounts{Free: 38, Fill: 16, Held: 10}) {
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
		descs := make([]Desc, 16)
		for i := range descs {
			descs[i] = Desc{Addr: addrs[i] + 64, Len: 60}
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
		k.send(16)
		k.complete(16)
		s.Service()
		if c := checkSum(t, s, "after service"); c != (FrameCounts{Free: 18, Fill: 16, Held: 30}) {
			t.Fatalf("after service: %+v", c)
		}
		if m := s.Take(addrs[:18]); m != 18 {
			t.Fatalf("Take after completion = %d", m)
		}
		// A taken frame is held: transmitting it twice or recycling it
		// after transmit is refused and counted.
		if sent := s.Transmit([]Desc{{Addr: addrs[0], Len: 60}}); sent != 1 {
			t.Fatalf("Transmit of a taken frame = %d", sent)
		}
		if sent := s.Transmit([]Desc{{Addr: addrs[0], Len: 60}}); sent != 0 {
			t.Fatalf("second Transmit of the same frame = %d", sent)
		}
		s.Recycle(addrs[0])
		var st Stats
		s.counters(&st)
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
