package pipeline

import (
	"errors"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// This file is live capture (GET /v1/capture, docs/API.md): copies of the
// frames the workers see, as received and as transmitted, with what
// Process decided, for a reader that writes them out as pcapng.
//
// The data path pays for it only while a capture runs. Each worker's loop
// asks its CaptureTap once per batch (Begin: one atomic load of the set of
// running captures, nil almost always). While one runs, the loop hands the
// tap each frame before Process (Received: the 5-tuple filters, and a copy
// of the frame as received into a per-worker scratch area) and after it
// (Processed: the verdict, and where the transmitted frame is), and after
// the batch is on the tx ring, Commit applies the verdict, reason, service
// and backend filters and copies what matches into each capture's ring for
// this worker: a preallocated ring of CaptureSlots fixed-size slots that
// only this worker writes and only the capture's reader reads. A full ring
// drops the copy and counts it (Dropped); forwarding never waits for a
// reader. Nothing here allocates per packet.

const (
	// MaxCaptures is the most captures that run at once.
	MaxCaptures = 8
	// MaxSnapLen is the most bytes of a frame a capture keeps: a UMEM
	// frame is at most 4096 bytes.
	MaxSnapLen = 4096
	// CaptureSlots is how many packets one worker holds for one capture
	// until its reader takes them; past that, copies are dropped.
	CaptureSlots = 256
)

// ErrTooManyCaptures is Start's answer when MaxCaptures already run.
var ErrTooManyCaptures = errors.New("too many captures running at once")

// CaptureFilter selects the packets a capture keeps; a zero field matches
// every packet. The 5-tuple is the inner packet's, as Process reads it
// (the client's flow; for an ICMP error, the flow it quotes, reversed); a
// packet without one (not IP, malformed) matches no 5-tuple field. The
// service is the one the packet was forwarded for or, for another
// verdict, the one its destination matches; only forwarded packets have a
// backend.
type CaptureFilter struct {
	Service string
	Backend netip.Addr
	// Verdicts and Reasons are sets: bit 1<<v for each verdict v, 1<<r
	// for each reason r; 0 is every one.
	Verdicts uint8
	Reasons  uint32
	Src, Dst netip.Addr
	SrcPort  uint16
	DstPort  uint16
	Proto    uint8
	// SnapLen is the most bytes kept of each frame; 0 or more than
	// MaxSnapLen is MaxSnapLen.
	SnapLen int
}

// Capture is the node's set of running captures and the workers' taps
// into it. Captures start and stop at any time, from any goroutine.
type Capture struct {
	set atomic.Pointer[captureSet] // nil when no capture runs

	mu       sync.Mutex
	taps     []*CaptureTap
	sessions []*CaptureSession
}

// captureSet is the running captures as the workers see them: immutable,
// replaced wholesale. A packet's match mask has bit i for sessions[i].
type captureSet struct {
	sessions []*CaptureSession
	snap     int // the largest snap length among them
}

// NewCapture returns a Capture with no taps and no capture running.
func NewCapture() *Capture { return &Capture{} }

// NewTap registers a worker (by its queue and CPU, which the captured
// packets carry) and returns its tap, for Loop.Tap. Register every worker
// before captures start: one registered later sees only later captures.
func (c *Capture) NewTap(queue, cpu int) *CaptureTap {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &CaptureTap{Queue: queue, CPU: cpu, set: &c.set, idx: len(c.taps), cur: -1}
	c.taps = append(c.taps, t)
	return t
}

// Taps returns the registered taps, for their counters.
func (c *Capture) Taps() []*CaptureTap {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*CaptureTap(nil), c.taps...)
}

// Running returns the number of captures running.
func (c *Capture) Running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// Start starts a capture with filter f. Its packets are read with Read
// until Stop.
func (c *Capture) Start(f CaptureFilter) (*CaptureSession, error) {
	snap := f.SnapLen
	if snap <= 0 || snap > MaxSnapLen {
		snap = MaxSnapLen
	}
	s := &CaptureSession{hub: c, filter: compileFilter(f), snap: snap, notify: make(chan struct{}, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) >= MaxCaptures {
		return nil, ErrTooManyCaptures
	}
	for _, t := range c.taps {
		if t.scratch == nil {
			// Written before the set that makes the worker use it is
			// published below, and never again.
			t.scratch = make([]byte, Batch*MaxSnapLen)
		}
		s.rings = append(s.rings, &captureRing{
			slots: make([]captureSlot, CaptureSlots),
			data:  make([]byte, CaptureSlots*2*snap),
			snap:  snap,
		})
	}
	c.sessions = append(c.sessions, s)
	c.publish()
	return s, nil
}

// publish makes the workers see c.sessions from their next batch on.
func (c *Capture) publish() {
	if len(c.sessions) == 0 {
		c.set.Store(nil)
		return
	}
	set := &captureSet{sessions: append([]*CaptureSession(nil), c.sessions...)}
	for _, s := range set.sessions {
		set.snap = max(set.snap, s.snap)
	}
	c.set.Store(set)
}

// CaptureSession is one running capture.
type CaptureSession struct {
	hub    *Capture
	filter captureFilter
	snap   int
	rings  []*captureRing // by tap index
	notify chan struct{}
	stop   sync.Once
}

// SnapLen is the most bytes the capture keeps of a frame.
func (s *CaptureSession) SnapLen() int { return s.snap }

// Stop ends the capture: workers stop copying for it from their next
// batch. It is safe to call more than once.
func (s *CaptureSession) Stop() {
	s.stop.Do(func() {
		c := s.hub
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, o := range c.sessions {
			if o == s {
				c.sessions = append(c.sessions[:i:i], c.sessions[i+1:]...)
				break
			}
		}
		c.publish()
	})
}

// Ready is signalled when a worker has put packets in the capture's rings
// since the last signal.
func (s *CaptureSession) Ready() <-chan struct{} { return s.notify }

// Dropped returns how many matching packets the capture lost because its
// rings were full (the reader was slow).
func (s *CaptureSession) Dropped() uint64 {
	var n uint64
	for _, r := range s.rings {
		n += r.dropped.Load()
	}
	return n
}

// CapturedPacket is one packet a capture kept. Its slices are valid only
// during the Read callback that received it.
type CapturedPacket struct {
	Time       time.Time // the batch's arrival time
	Queue, CPU int
	Verdict    Verdict
	Reason     Reason
	Service    string     // "" when no service matched
	Backend    netip.Addr // forwarded packets only
	// Received is the frame as it arrived, cut to the snap length;
	// ReceivedLen is its full length.
	Received    []byte
	ReceivedLen int
	// Transmitted is the frame as it went out (nil unless it did).
	Transmitted    []byte
	TransmittedLen int
}

// Read passes each packet the workers have put in the capture's rings
// since the last Read to fn, worker by worker, and returns how many it
// passed. fn returning false stops it (the rest stay for the next Read).
// Only one goroutine may Read a capture.
func (s *CaptureSession) Read(fn func(*CapturedPacket) bool) int {
	taps := s.hub.Taps()
	n := 0
	for i, r := range s.rings {
		tail, head := r.tail.Load(), r.head.Load()
		for ; tail != head; tail++ {
			j := int(tail & (CaptureSlots - 1))
			sl := &r.slots[j]
			d := r.data[j*2*r.snap:]
			cp := CapturedPacket{
				Time: time.Unix(0, sl.time), Queue: taps[i].Queue, CPU: taps[i].CPU,
				Verdict: sl.r.Verdict, Reason: sl.r.Reason,
				Received: d[:sl.rxLen], ReceivedLen: int(sl.rxWire),
			}
			if sl.svc >= 0 {
				cp.Service = sl.snap.services[sl.svc].name
			}
			if sl.r.Verdict == Tx && sl.r.Reason == ReasonNone {
				cp.Backend = sl.snap.BackendAddr(sl.r.Service, sl.r.Backend)
			}
			if sl.txWire > 0 {
				cp.Transmitted, cp.TransmittedLen = d[r.snap:r.snap+int(sl.txLen)], int(sl.txWire)
			}
			n++
			if !fn(&cp) {
				r.tail.Store(tail + 1)
				return n
			}
		}
		r.tail.Store(tail)
	}
	return n
}

// captureRing is one worker's ring of slots for one capture: the worker
// writes at head, the reader takes from tail.
type captureRing struct {
	head atomic.Uint64
	_    [56]byte // head and tail on cache lines of their own
	tail atomic.Uint64
	_    [56]byte

	dropped atomic.Uint64
	whead   uint64 // the worker's head, published once per batch
	slots   []captureSlot
	data    []byte // slot i's frames at i*2*snap: received, then transmitted
	snap    int
}

type captureSlot struct {
	snap          *Snapshot // the snapshot the packet was processed with, for names
	time          int64
	rxLen, rxWire int32
	txLen, txWire int32
	svc           int32 // service index, -1: none
	r             Result
}

// captureFilter is a CaptureFilter as the worker tests it.
type captureFilter struct {
	service        string
	backend        netip.Addr
	verdicts       uint8
	reasons        uint32
	src, dst       addr128
	hasSrc, hasDst bool
	sport, dport   uint16
	proto          uint8
	tuple          bool // some 5-tuple field is set
}

func compileFilter(f CaptureFilter) captureFilter {
	c := captureFilter{service: f.Service, backend: f.Backend.Unmap(), verdicts: f.Verdicts, reasons: f.Reasons,
		sport: f.SrcPort, dport: f.DstPort, proto: f.Proto}
	if f.Src.IsValid() {
		c.src, c.hasSrc = addrOf(f.Src.Unmap()), true
	}
	if f.Dst.IsValid() {
		c.dst, c.hasDst = addrOf(f.Dst.Unmap()), true
	}
	c.tuple = c.hasSrc || c.hasDst || c.sport != 0 || c.dport != 0 || c.proto != 0
	return c
}

// matchTuple tests the 5-tuple fields; ok says the packet has a 5-tuple.
func (f *captureFilter) matchTuple(ok bool, k *flowKey) bool {
	if !f.tuple {
		return true
	}
	if !ok {
		return false
	}
	ports := uint32(k.rest >> 8)
	return (!f.hasSrc || k.src == f.src) && (!f.hasDst || k.dst == f.dst) &&
		(f.sport == 0 || uint16(ports>>16) == f.sport) && (f.dport == 0 || uint16(ports) == f.dport) &&
		(f.proto == 0 || k.proto() == f.proto)
}

// matchResult tests the verdict, reason, service and backend.
func (f *captureFilter) matchResult(s *Snapshot, rec *captureRec) bool {
	r := rec.r
	if f.verdicts != 0 && f.verdicts&(1<<r.Verdict) == 0 || f.reasons != 0 && f.reasons&(1<<r.Reason) == 0 {
		return false
	}
	if f.service != "" && (rec.svc < 0 || s.services[rec.svc].name != f.service) {
		return false
	}
	if f.backend.IsValid() {
		if r.Verdict != Tx || r.Reason != ReasonNone || s.BackendAddr(r.Service, r.Backend) != f.backend {
			return false
		}
	}
	return true
}

// CaptureTap is one worker's entry into the running captures: the hook its
// loop calls per batch, and the worker's capture counters.
type CaptureTap struct {
	Queue, CPU int

	set      *atomic.Pointer[captureSet]
	idx      int // the worker's ring in each capture
	captured atomic.Uint64
	dropped  atomic.Uint64

	// The current batch's state, the worker's alone.
	w       *Worker
	cs      *captureSet
	now     int64
	n       int // records this batch
	ntx     int // Tx verdicts so far this batch: the tx ring's order
	cur     int // the record of the packet being processed; -1: none
	recs    [Batch]captureRec
	scratch []byte // Batch frames of MaxSnapLen, as received
}

// captureRec is what the tap knows of one packet of the batch.
type captureRec struct {
	mask          uint32 // the captures whose 5-tuple filters it passed
	rxLen, rxWire int
	svc           int32
	r             Result
	tx            int    // its place on the tx ring, -1: not transmitted
	out           []byte // the frame as transmitted, in the UMEM
}

// Captured and Dropped are the packets this worker copied for captures
// and those it could not (a capture's ring was full).
func (t *CaptureTap) Captured() uint64 { return t.captured.Load() }
func (t *CaptureTap) Dropped() uint64  { return t.dropped.Load() }

// Begin is the worker loop's per-batch hook, called after w.Begin: one
// atomic load. It returns nil when no capture runs (t may be nil too);
// otherwise the tap, to be given every frame of the batch with Received
// before Process and Processed after, and the batch with Commit once it
// is on the tx ring.
func (t *CaptureTap) Begin(w *Worker) *CaptureTap {
	if t == nil || t.set.Load() == nil {
		return nil
	}
	return t.begin(w)
}

// begin is Begin when a capture runs: out of line, so that Begin inlines
// into the loop.
func (t *CaptureTap) begin(w *Worker) *CaptureTap {
	cs := t.set.Load() // again: the last capture may have stopped since
	if cs == nil {
		return nil
	}
	t.w, t.cs, t.n, t.ntx, t.cur = w, cs, 0, 0, -1
	t.now = time.Now().UnixNano()
	return t
}

// Received takes a frame before Process rewrites it: when some capture's
// 5-tuple filter passes it, the frame as received is copied.
func (t *CaptureTap) Received(p *Packet) {
	t.cur = -1
	if t.n == Batch || uint(p.Off) > uint(len(p.Buf)) || uint(p.Len) > uint(len(p.Buf)-p.Off) {
		return
	}
	var fl flow
	ok := t.w.parseGeneral(p, &fl).Verdict == Tx
	var mask uint32
	for i, s := range t.cs.sessions {
		if t.idx < len(s.rings) && s.filter.matchTuple(ok, &fl.key) {
			mask |= 1 << i
		}
	}
	if mask == 0 {
		return
	}
	svc := int32(-1)
	if ok {
		if sl := t.w.snap.lookupService(fl.key.dst, fl.port, fl.proto); sl != nil {
			svc = int32(sl.idx)
		}
	}
	n := min(p.Len, t.cs.snap)
	copy(t.scratch[t.n*MaxSnapLen:], p.Buf[p.Off:p.Off+n])
	t.recs[t.n] = captureRec{mask: mask, rxLen: n, rxWire: p.Len, svc: svc, tx: -1}
	t.cur = t.n
	t.n++
}

// Processed takes Process's result for the frame last given to Received.
// Call it for every frame: the transmitted ones are counted in order.
func (t *CaptureTap) Processed(p *Packet, r Result) {
	tx := -1
	if r.Verdict == Tx {
		tx = t.ntx
		t.ntx++
	}
	if t.cur < 0 {
		return
	}
	rec := &t.recs[t.cur]
	rec.r, rec.tx = r, tx
	if tx >= 0 {
		rec.out = p.Buf[p.Off : p.Off+p.Len]
		rec.svc = int32(r.Service)
	}
	t.cur = -1
}

// Commit ends the batch once its frames are on the tx ring, which took
// the first sent of them (the others are tx_ring_full drops, as the
// worker counts them): each recorded packet that passes a capture's
// other filters is copied into that capture's ring for this worker.
func (t *CaptureTap) Commit(sent int) {
	cs, s := t.cs, t.w.snap
	var touched uint32
	var captured, dropped uint64
	for i := range t.recs[:t.n] {
		rec := &t.recs[i]
		if rec.tx >= sent {
			rec.r.Verdict, rec.r.Reason, rec.tx, rec.out = Drop, TxRingFull, -1, nil
		}
		for m := rec.mask; m != 0; m &= m - 1 {
			j := bits.TrailingZeros32(m)
			sess := cs.sessions[j]
			if !sess.filter.matchResult(s, rec) {
				continue
			}
			rg := sess.rings[t.idx]
			if rg.whead-rg.tail.Load() >= CaptureSlots {
				rg.dropped.Add(1)
				dropped++
				continue
			}
			k := int(rg.whead & (CaptureSlots - 1))
			d := rg.data[k*2*rg.snap:]
			rxn := min(rec.rxLen, rg.snap)
			copy(d[:rxn], t.scratch[i*MaxSnapLen:])
			txn := min(len(rec.out), rg.snap)
			copy(d[rg.snap:rg.snap+txn], rec.out)
			rg.slots[k] = captureSlot{snap: s, time: t.now, rxLen: int32(rxn), rxWire: int32(rec.rxWire),
				txLen: int32(txn), txWire: int32(len(rec.out)), svc: rec.svc, r: rec.r}
			rg.whead++
			touched |= 1 << j
			captured++
		}
		rec.out = nil
	}
	for m := touched; m != 0; m &= m - 1 {
		sess := cs.sessions[bits.TrailingZeros32(m)]
		rg := sess.rings[t.idx]
		rg.head.Store(rg.whead)
		select {
		case sess.notify <- struct{}{}:
		default:
		}
	}
	if captured != 0 {
		t.captured.Add(captured)
	}
	if dropped != 0 {
		t.dropped.Add(dropped)
	}
	t.n, t.ntx, t.cs = 0, 0, nil
}
