package pipeline

import (
	"sync/atomic"
	"time"

	"github.com/rail-lb/rail/rings"
)

// Loop drives one AF_XDP socket with a Worker: a poll-mode loop that takes
// a batch from the rx ring, processes it and puts what is forwarded on the
// tx ring (Poll), parking in poll(2) when idle (Run). It is meant to run on
// a goroutine locked to a pinned OS thread (package pin); rings/doc.go
// walks the rings.
type Loop struct {
	W    *Worker
	Sock *rings.Socket
	Snap *atomic.Pointer[Snapshot] // the current snapshot, swapped by control

	// IdleSpins is how many empty polls the loop makes before it parks in
	// poll(2) for IdleWait; 0 spins forever (pure busy polling).
	IdleSpins int
	IdleWait  time.Duration

	// Tap, when set, feeds live captures (capture.go); it costs one atomic
	// load per batch while none runs.
	Tap *CaptureTap

	rx  [Batch]rings.Desc
	tx  [Batch]rings.Desc
	txr [Batch]Result // what Process said of each tx descriptor
}

// Run polls until stop is set.
func (l *Loop) Run(stop *atomic.Bool) {
	idle := 0
	for !stop.Load() {
		if l.Poll() > 0 {
			idle = 0
			continue
		}
		idle++
		if l.IdleSpins > 0 && idle >= l.IdleSpins {
			if l.Sock.Wait(l.IdleWait) != nil {
				time.Sleep(l.IdleWait) // poll(2) failing must not become a spin
			}
			idle = 0
		}
	}
}

// Poll is one iteration of the loop: service the fill and completion
// rings, take up to Batch received frames, process them, transmit what is
// forwarded, recycle the rest, publish the counters. It returns the number
// of frames received. It allocates nothing.
func (l *Loop) Poll() int {
	s := l.Sock
	s.Service()
	n := s.Receive(l.rx[:])
	if n == 0 {
		return 0
	}
	w := l.W
	w.Begin(l.Snap.Load(), time.Now())
	ntx := 0
	c := l.Tap.Begin(w) // nil unless a capture runs
	if c != nil {
		ntx = l.captureBatch(c, n) // capture_linux.go: this loop, with the tap
	} else {
		// In stages, as ProcessBatch, once the connection table is too
		// large for the caches: find every frame's bucket, then fetch the
		// buckets ahead of the processing (batch.go).
		staging := w.staging()
		if staging {
			for i := range l.rx[:n] {
				buf, off := s.Frame(l.rx[i].Addr)
				w.stage(i, &Packet{Buf: buf, Off: off, Len: int(l.rx[i].Len)})
			}
			w.fetchFirst(n)
		}
		for i := range l.rx[:n] {
			if staging && i%fetchGroup == 0 {
				w.fetchAhead(i, n)
			}
			d := &l.rx[i]
			buf, off := s.Frame(d.Addr)
			p := Packet{Buf: buf, Off: off, Len: int(d.Len)}
			if r := w.Process(&p); r.Verdict == Tx {
				l.tx[ntx] = rings.Desc{Addr: s.FrameBase(d.Addr) + uint64(p.Off), Len: uint32(p.Len)}
				l.txr[ntx] = r
				ntx++
			} else {
				s.Recycle(d.Addr)
			}
		}
	}
	sent := 0
	if ntx > 0 {
		sent = s.Transmit(l.tx[:ntx])
		for i := sent; i < ntx; i++ {
			s.Recycle(l.tx[i].Addr) // the tx ring is full: a drop
			w.untransmit(l.txr[i])
		}
	}
	if c != nil {
		c.Commit(sent)
	}
	w.Flush()
	return n
}
