package rings

import (
	"sync"
	"sync/atomic"
)

// Frame states, one byte per frame, so that a caller's mistake (recycling a
// frame twice, transmitting a frame it doesn't hold) is refused and counted
// instead of corrupting the accounting or the free stack.
const (
	stFree uint8 = iota // on the free stack
	stFill              // fill ring, inside the kernel, or rx ring
	stHeld              // returned by Receive, owned by the caller
	stTx                // tx ring, inside the kernel, or completion ring
)

// counts packing: free | held<<21 | txOut<<42 in one atomic word, so that
// Frames() from another goroutine always sees a consistent triple.
const (
	countBits = 21
	countMask = 1<<countBits - 1
)

// Socket is one AF_XDP socket bound to one NIC queue, with its own UMEM.
//
// Receive, Transmit, Recycle and Service are the worker's: call them from
// one goroutine only. FD, ZeroCopy, Frame, FrameBase, Frames and Stats may
// be called from any goroutine until Close.
type Socket struct {
	fd       int
	queue    int
	zeroCopy bool
	opts     Opts

	umem       []byte
	frameShift uint
	frameMask  uint64 // FrameSize-1
	frameCount uint32

	fill, comp, rx, tx   ring
	fillAddrs, compAddrs []uint64
	rxDescs, txDescs     []Desc

	free  freeStack
	state []uint8

	// Worker-owned; published through counts.
	held, txOut uint32
	// txKickCons is the kernel's tx consumer index at the last kick from
	// Service, and txStall how many Service calls since then made no
	// progress: a kick the kernel could not act on (its send buffer is
	// full of frames waiting for completion) is not repeated until the
	// kernel consumed or completed something, or txStallKicks calls passed.
	txKickCons uint32
	txStall    uint32
	counts     atomic.Uint64

	// busy: preferred busy polling is set on the socket (BusyPollStatus.
	// Enabled): Transmit never kicks and Service makes the one system call
	// of an iteration (drive).
	busy     bool
	busyStat BusyPollStatus

	txKicks, fillKicks, kickErrors atomic.Uint64
	busyPolls, waits               atomic.Uint64
	badRecycles, badTransmits      atomic.Uint64
	ringErrors                     atomic.Uint64

	sys sysState // OS-specific: mappings, poll state

	mu     sync.RWMutex // guards closed against Frames/Stats during Close
	closed bool
}

// ringMem is where one ring lives: its shared indices, flags and entries.
type ringMem struct {
	producer, consumer, flags *uint32
	size                      uint32
}

// init sets up everything that is not a system call: rings over the
// given memory, the free stack holding every frame, and the first fill.
func (s *Socket) init(o Opts, umem []byte, fill, comp, rx, tx ringMem,
	fillAddrs, compAddrs []uint64, rxDescs, txDescs []Desc) {
	s.setup(o, umem, fill, comp, rx, tx, fillAddrs, compAddrs, rxDescs, txDescs)
	// Push in reverse so that frame 0 is handed out first.
	for i := int64(o.FrameCount) - 1; i >= 0; i-- {
		s.free.push(uint64(i) << s.frameShift)
	}
	s.refill()
	s.publish()
}

// setup lays the rings over the given memory and sizes the frame
// bookkeeping (an empty free stack, every frame's state free).
func (s *Socket) setup(o Opts, umem []byte, fill, comp, rx, tx ringMem,
	fillAddrs, compAddrs []uint64, rxDescs, txDescs []Desc) {
	s.opts = o
	s.umem = umem
	s.frameCount = o.FrameCount
	s.frameMask = uint64(o.FrameSize) - 1
	for 1<<s.frameShift < o.FrameSize {
		s.frameShift++
	}
	s.fill = newRing(fill.producer, fill.consumer, fill.flags, fill.size)
	s.comp = newRing(comp.producer, comp.consumer, comp.flags, comp.size)
	s.rx = newRing(rx.producer, rx.consumer, rx.flags, rx.size)
	s.tx = newRing(tx.producer, tx.consumer, tx.flags, tx.size)
	s.fillAddrs, s.compAddrs, s.rxDescs, s.txDescs = fillAddrs, compAddrs, rxDescs, txDescs
	s.free = newFreeStack(o.FrameCount)
	s.state = make([]uint8, o.FrameCount)
}

// FD is the socket's file descriptor (for the XSKMAP and for polling).
func (s *Socket) FD() int { return s.fd }

// ZeroCopy reports whether the kernel bound the socket in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// Frame returns the whole UMEM frame holding addr (len == FrameSize) and
// addr's offset inside it. The packet of an rx Desc d is
// buf[off : off+int(d.Len)].
//
// An address outside the UMEM yields (nil, 0).
func (s *Socket) Frame(addr uint64) (buf []byte, off int) {
	base := addr &^ s.frameMask
	end := base + s.frameMask + 1
	if end > uint64(len(s.umem)) {
		return nil, 0
	}
	return s.umem[base:end:end], int(addr & s.frameMask)
}

// FrameBase returns the UMEM address of the start of the frame holding
// addr. A frame rewritten to start at byte off of buf is transmitted as
// Desc{Addr: s.FrameBase(addr) + uint64(off), Len: n}.
func (s *Socket) FrameBase(addr uint64) uint64 { return addr &^ s.frameMask }

// Receive moves up to len(descs) received descriptors into descs and
// returns how many. Their frames are held by the caller until Transmit
// accepts them or Recycle returns them.
func (s *Socket) Receive(descs []Desc) int {
	n := s.rx.peek(uint32(len(descs)))
	if n == 0 {
		return 0
	}
	idx := s.rx.cachedCons
	k := 0
	for i := uint32(0); i < n; i++ {
		d := s.rxDescs[(idx+i)&s.rx.mask]
		chunk := d.Addr >> s.frameShift
		if chunk >= uint64(s.frameCount) || s.state[chunk] != stFill {
			s.ringErrors.Add(1) // not a frame we gave the kernel: never hand it out
			continue
		}
		s.state[chunk] = stHeld
		descs[k] = d
		k++
	}
	s.rx.release(n)
	s.held += uint32(k)
	s.publish()
	return k
}

// Transmit puts descriptors of held frames on the tx ring, in order, and
// returns how many it accepted: the first descriptor that does not fit
// (ring full) or is refused (a frame not held, Len 0, data past the end of
// its frame, Options ≠ 0) stops it. The caller still holds the frames of
// descs[n:] and must Transmit or Recycle them. The kernel is kicked with
// one sendto(MSG_DONTWAIT) only if the tx ring's need_wakeup flag is set
// and the socket does not busy poll (then the next Service sends them).
func (s *Socket) Transmit(descs []Desc) int {
	n := s.tx.reserve(uint32(len(descs)))
	idx := s.tx.cachedProd
	k := uint32(0)
	for ; k < n; k++ {
		d := descs[k]
		chunk := d.Addr >> s.frameShift
		if chunk >= uint64(s.frameCount) || d.Len == 0 || d.Options != 0 ||
			(d.Addr&s.frameMask)+uint64(d.Len) > s.frameMask+1 || s.state[chunk] != stHeld {
			s.badTransmits.Add(1)
			break
		}
		s.state[chunk] = stTx
		s.txDescs[(idx+k)&s.tx.mask] = d
	}
	if k > 0 {
		s.tx.submit(k)
		s.held -= k
		s.txOut += k
		s.publish()
	}
	if !s.busy && (k > 0 || n == 0) && s.tx.needWakeup() {
		s.kickTx()
	}
	return int(k)
}

// Take hands free frames to the caller for transmit-only use (a
// generator): it writes the base addresses of up to len(addrs) frames from
// the free stack into addrs and returns how many. The frames are held, as
// if Received: the caller writes a packet into Frame(addr) and passes it
// to Transmit (Desc{Addr: addr + off, Len: n}) or gives it back with
// Recycle. Completed transmissions come back to the free stack in Service,
// ready to be taken again.
//
// Free frames are those the fill ring has no room for: Open puts
// min(FrameCount, FillSize) frames on the fill ring and Service keeps it
// topped up from the free stack, so a socket meant to transmit keeps
// FillSize below FrameCount (a socket that only transmits: FillSize 1...
// a few, FrameCount = what may be in flight).
func (s *Socket) Take(addrs []uint64) int {
	n := uint32(len(addrs))
	if n > s.free.n {
		n = s.free.n
	}
	for i := uint32(0); i < n; i++ {
		addr, _ := s.free.pop()
		s.state[addr>>s.frameShift] = stHeld
		addrs[i] = addr
	}
	if n > 0 {
		s.held += n
		s.publish()
	}
	return int(n)
}

// Recycle returns a held frame (any address inside it) to the free stack.
// A frame the caller does not hold is ignored and counted in
// Stats.BadRecycles.
func (s *Socket) Recycle(addr uint64) {
	chunk := addr >> s.frameShift
	if chunk >= uint64(s.frameCount) || s.state[chunk] != stHeld {
		s.badRecycles.Add(1)
		return
	}
	s.state[chunk] = stFree
	s.free.push(addr &^ s.frameMask)
	s.held--
	s.publish()
}

// Service is called once per poll-loop iteration: it reaps the completion
// ring into the free stack, refills the fill ring from the free stack, and
// makes the wakeup system calls the kernel asked for (fill ring
// need_wakeup: recvfrom; tx ring need_wakeup with descriptors still
// waiting on it: sendto — in copy mode the kernel sends only a bounded
// batch per sendto, so a burst larger than that needs another kick).
//
// A socket that busy polls (BusyPoll().Enabled) makes at most one system
// call here and none elsewhere (drive), so a worker iteration — Service,
// Receive, Transmit — costs at most one.
func (s *Socket) Service() {
	completed := s.reap()
	s.refill()
	s.publish()
	if s.busy {
		s.drive()
		return
	}
	if s.fill.needWakeup() {
		s.kickFill()
	}
	if s.txOut == 0 {
		return
	}
	cons := atomicLoad(s.tx.consumer)
	if cons == s.tx.cachedProd || !s.tx.needWakeup() {
		return
	}
	// Descriptors wait on the tx ring. Kick again only when the last kick
	// got somewhere (the kernel took descriptors or completed frames since),
	// or after a while: re-kicking a kernel that cannot send yet is a system
	// call per loop for nothing.
	if cons != s.txKickCons || completed > 0 || s.txStall >= txStallKicks {
		s.kickTx()
		s.txKickCons, s.txStall = cons, 0
		return
	}
	s.txStall++
}

// txStallKicks is how many Service calls a stalled tx ring waits between kicks.
const txStallKicks = 64

// drive is Service's system call when the socket busy polls: the worker
// is the queue's NAPI scheduler now (the kernel defers its own run while
// the worker keeps calling), so it runs the NAPI when there is work for
// it, with exactly one call:
//
//   - descriptors wait on the tx ring: sendto(MSG_DONTWAIT). The kernel
//     busy polls the NAPI (receiving up to the budget into the rx ring)
//     and then transmits (copy mode: up to the tx budget of descriptors;
//     zero-copy: the NAPI's tx work did). Whether or not need_wakeup is
//     set: with busy polling nobody else runs that NAPI.
//   - else the rx ring is empty, or the fill ring asks for a wakeup:
//     recvfrom(MSG_DONTWAIT), which busy polls the NAPI.
//   - else received frames wait: no call, Receive takes them.
func (s *Socket) drive() {
	if s.txOut > 0 && atomicLoad(s.tx.consumer) != s.tx.cachedProd {
		s.kickTx()
		return
	}
	if s.rx.peek(1) == 0 || s.fill.needWakeup() {
		s.busyPoll()
	}
}

// BusyPoll reports what Open made of Opts.BusyPoll.
func (s *Socket) BusyPoll() BusyPollStatus { return s.busyStat }

func (s *Socket) reap() uint32 {
	n := s.comp.peek(s.comp.size)
	if n == 0 {
		return 0
	}
	idx := s.comp.cachedCons
	for i := uint32(0); i < n; i++ {
		addr := s.compAddrs[(idx+i)&s.comp.mask]
		chunk := addr >> s.frameShift
		if chunk >= uint64(s.frameCount) || s.state[chunk] != stTx {
			s.ringErrors.Add(1)
			continue
		}
		s.state[chunk] = stFree
		s.free.push(addr &^ s.frameMask)
		s.txOut--
	}
	s.comp.release(n)
	return n
}

func (s *Socket) refill() {
	want := s.free.n
	if want > s.fill.size {
		want = s.fill.size
	}
	n := s.fill.reserve(want)
	if n == 0 {
		return
	}
	idx := s.fill.cachedProd
	for i := uint32(0); i < n; i++ {
		addr, _ := s.free.pop()
		s.state[addr>>s.frameShift] = stFill
		s.fillAddrs[(idx+i)&s.fill.mask] = addr
	}
	s.fill.submit(n)
}

func (s *Socket) publish() {
	s.counts.Store(uint64(s.free.n) | uint64(s.held)<<countBits | uint64(s.txOut)<<(2*countBits))
}

// Frames says where every frame is. Safe to call from any goroutine while
// the worker runs; the fields always sum to FrameCount. Rx and Completion
// are read from the shared ring indices; a frame the worker is moving
// right now is counted on the side it came from.
func (s *Socket) Frames() FrameCounts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return FrameCounts{}
	}
	v := s.counts.Load()
	free := uint32(v & countMask)
	held := uint32(v >> countBits & countMask)
	txOut := uint32(v >> (2 * countBits) & countMask)
	fillOut := s.frameCount - free - held - txOut
	rx := min(s.rx.pending(), fillOut)
	comp := min(s.comp.pending(), txOut)
	return FrameCounts{
		Free: free, Fill: fillOut - rx, Rx: rx,
		Held: held, Tx: txOut - comp, Completion: comp,
	}
}

func (s *Socket) counters(st *Stats) {
	st.TxKicks = s.txKicks.Load()
	st.FillKicks = s.fillKicks.Load()
	st.BusyPolls = s.busyPolls.Load()
	st.Waits = s.waits.Load()
	st.KickErrors = s.kickErrors.Load()
	st.BadRecycles = s.badRecycles.Load()
	st.BadTransmits = s.badTransmits.Load()
	st.RingErrors = s.ringErrors.Load()
}
