package pipeline

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rail-lb/rail/rings"
	"github.com/rail-lb/rail/rings/ringstest"
)

// Loop driven through the fake kernel of rings/ringstest: no NIC, no
// privileges. TestLoopPollNoAllocs does the same on a real veth.

// memoryLoop returns a Loop over a memory socket with o and its kernel.
func memoryLoop(t *testing.T, o rings.Opts) (*Loop, *rings.Socket, *ringstest.Kernel) {
	t.Helper()
	sock, k, err := ringstest.New(o, 0xffffffff-100) // the indices wrap during the test
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	k.SetTxNeedWakeup(true) // as in copy mode
	return newTestLoop(t, sock), sock, k
}

// newTestLoop is a Loop on sock with testConfig's snapshot and a fresh
// worker.
func newTestLoop(t *testing.T, sock *rings.Socket) *Loop {
	t.Helper()
	snap, err := NewSnapshot(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var ptr atomic.Pointer[Snapshot]
	ptr.Store(snap)
	ct, err := NewConntrack(1024, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return &Loop{W: NewWorker(ct), Sock: sock, Snap: &ptr}
}

func loopOpts(frames, ring uint32) rings.Opts {
	o := rings.DefaultOpts()
	o.FrameSize, o.FrameCount = 2048, frames
	o.FillSize, o.CompletionSize, o.RxSize, o.TxSize = ring, ring, ring, ring
	return o
}

// flowFrame is flow i: a GRE frame to the web VIP from its own source port,
// or, for every fifth i, a plain UDP frame to nobody (passed to the kernel).
func flowFrame(t *testing.T, i int) (frame, inner []byte, ours bool) {
	in := defaultInner()
	in.sport = uint16(20000 + i)
	if i%5 == 4 {
		in.proto, in.dst, in.dport = layers.IPProtocolUDP, netip.MustParseAddr("203.0.113.9"), 53
		return plainFrame(t, in), nil, false
	}
	return greFrame(t, in, nil), innerBytes(t, in), true
}

// checkFrames fails unless every frame of the socket is somewhere.
func checkFrames(t *testing.T, s *rings.Socket, o rings.Opts, where string) rings.FrameCounts {
	t.Helper()
	c := s.Frames()
	if c.Sum() != o.FrameCount {
		t.Fatalf("%s: frames %+v sum to %d, want %d", where, c, c.Sum(), o.FrameCount)
	}
	return c
}

// checkSent decodes a transmitted frame: GRE over IPv4 from the local
// address to a backend, carrying the inner packet unchanged.
func checkSent(t *testing.T, pkt, inner []byte) {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	gre, _ := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
	if ip == nil || gre == nil {
		t.Fatalf("transmitted frame is not GRE over IPv4: %v", p)
	}
	dst, _ := netip.AddrFromSlice(ip.DstIP)
	src, _ := netip.AddrFromSlice(ip.SrcIP)
	if src != localAddr || (dst != backends[0] && dst != backends[1] && dst != backends[2]) {
		t.Errorf("outer %v → %v, want %v → a backend", src, dst, localAddr)
	}
	if !bytes.Equal(gre.Payload, inner) {
		t.Errorf("inner packet changed:\n got %x\nwant %x", gre.Payload, inner)
	}
}

// TestLoopBatchBoundaries: 150 frames waiting are taken 64, 64, 22; the
// forwarded ones go on the tx ring in order, the others back to the free
// stack; every frame is accounted for after each poll and all come back.
// The same with the batches staged, as a loop with a large table does.
func TestLoopBatchBoundaries(t *testing.T) {
	for _, staged := range []bool{false, true} {
		t.Run(fmt.Sprint("staged=", staged), func(t *testing.T) { loopBatchBoundaries(t, staged) })
	}
}

func loopBatchBoundaries(t *testing.T, staged bool) {
	o := loopOpts(512, 256)
	l, s, k := memoryLoop(t, o)
	if staged {
		l.W.ct.live = stageMin // as if the table held that many flows
	}
	if l.W.staging() != staged {
		t.Fatalf("staging %v, want %v", l.W.staging(), staged)
	}
	const total = 150
	var inners [][]byte
	ours := 0
	if n := k.Take(total); n != total {
		t.Fatalf("kernel took %d of %d frames from the fill ring", n, total)
	}
	for i := range total {
		f, in, mine := flowFrame(t, i)
		if !k.DeliverFrame(f) {
			t.Fatalf("frame %d not delivered", i)
		}
		if mine {
			inners = append(inners, in)
			ours++
		}
	}
	want := []int{Batch, Batch, total - 2*Batch, 0}
	for i, w := range want {
		if got := l.Poll(); got != w {
			t.Fatalf("poll %d received %d frames, want %d", i, got, w)
		}
		checkFrames(t, s, o, "after a poll")
	}
	st := l.W.Stats()
	if st.Batches.Load() != 3 {
		t.Errorf("%d batches flushed, want 3 (an empty poll flushes nothing)", st.Batches.Load())
	}
	if got, pass := st.Transmitted(), st.Reasons[NotOurs].Load(); got != uint64(ours) || pass != total-uint64(ours) {
		t.Errorf("transmitted %d, passed %d; want %d and %d", got, pass, ours, total-ours)
	}
	c := checkFrames(t, s, o, "before sending")
	if c.Tx != uint32(ours) || c.Held != 0 || c.Rx != 0 {
		t.Errorf("before sending: %+v, want Tx %d and nothing held or waiting", c, ours)
	}
	// The kernel sends what is on the tx ring: the forwarded frames in
	// the order they arrived.
	i := 0
	k.SendFunc(1<<20, func(pkt []byte) {
		if i < len(inners) {
			checkSent(t, pkt, inners[i])
		}
		i++
	})
	if i != ours {
		t.Fatalf("kernel sent %d frames, want %d", i, ours)
	}
	k.Complete(1 << 20)
	l.Poll() // Service reaps the completions
	c = checkFrames(t, s, o, "at rest")
	if c.Free+c.Fill != o.FrameCount || c.Fill != o.FillSize {
		t.Errorf("at rest: %+v, want every frame free or on the fill ring (full)", c)
	}
	var perBackend uint64
	for id := range st.Backends {
		perBackend += st.Backends[id].Load()
	}
	if perBackend != uint64(ours) {
		t.Errorf("backends counted %d packets, want %d", perBackend, ours)
	}
}

// TestLoopTxRingFull: a batch larger than the free room on the tx ring
// transmits what fits; the rest are recycled and counted tx_ring_full,
// neither transmitted nor in a backend's count; the loop carries on once
// the kernel sends.
func TestLoopTxRingFull(t *testing.T) {
	o := loopOpts(256, 64)
	o.TxSize, o.CompletionSize = 16, 16
	l, s, k := memoryLoop(t, o)
	deliver := func(n int) {
		t.Helper()
		k.Take(n)
		for i := range n {
			f, _, _ := flowFrame(t, 5*i) // all ours
			if !k.DeliverFrame(f) {
				t.Fatalf("frame %d not delivered", i)
			}
		}
	}
	deliver(40)
	if got := l.Poll(); got != 40 {
		t.Fatalf("poll received %d, want 40", got)
	}
	st := l.W.Stats()
	backendSum := func() (n uint64) {
		for id := range st.Backends {
			n += st.Backends[id].Load()
		}
		return n
	}
	if tx, full := st.Transmitted(), st.Reasons[TxRingFull].Load(); tx != 16 || full != 24 {
		t.Errorf("transmitted %d, tx_ring_full %d; want 16 and 24", tx, full)
	}
	if n := backendSum(); n != 16 {
		t.Errorf("backends counted %d, want the 16 transmitted", n)
	}
	if c := checkFrames(t, s, o, "tx ring full"); c.Tx != 16 || c.Held != 0 {
		t.Errorf("tx ring full: %+v, want 16 on tx, none held", c)
	}
	// Nothing sent yet: the next batch finds the ring still full.
	deliver(8)
	l.Poll()
	if full := st.Reasons[TxRingFull].Load(); full != 32 {
		t.Errorf("tx_ring_full %d after a second batch into a full ring, want 32", full)
	}
	k.Send(16)
	k.Complete(16)
	deliver(8)
	l.Poll()
	if tx := st.Transmitted(); tx != 24 {
		t.Errorf("transmitted %d after the kernel sent, want 24", tx)
	}
	if st.Packets() != 56 || backendSum() != 24 {
		t.Errorf("packets %d (want 56), backends %d (want 24)", st.Packets(), backendSum())
	}
	checkFrames(t, s, o, "after the ring drained")
}

// TestLoopMemoryNoAllocs: a whole iteration — delivery, Poll, send,
// completion — allocates nothing, and really moves frames both ways; with
// the batches staged too (the prefetches of a large table).
func TestLoopMemoryNoAllocs(t *testing.T) {
	for _, staged := range []bool{false, true} {
		t.Run(fmt.Sprint("staged=", staged), func(t *testing.T) { loopMemoryNoAllocs(t, staged) })
	}
}

func loopMemoryNoAllocs(t *testing.T, staged bool) {
	o := loopOpts(512, 128)
	l, s, k := memoryLoop(t, o)
	if staged {
		l.W.ct.live = stageMin
	}
	frame, _, _ := flowFrame(t, 0)
	var received, sent int
	allocs := testing.AllocsPerRun(200, func() {
		k.Take(16)
		for range 16 {
			k.DeliverFrame(frame)
		}
		received += l.Poll()
		sent += k.Send(16)
		k.Complete(16)
	})
	if allocs != 0 {
		t.Errorf("an iteration allocates %v times, want 0", allocs)
	}
	if received != 16*201 || sent != received {
		t.Errorf("received %d and sent %d frames in 201 runs, want %d each", received, sent, 16*201)
	}
	checkFrames(t, s, o, "after the runs")
}
