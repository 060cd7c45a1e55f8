package rings

import (
	"errors"
	"fmt"
)

// Handoff is what a stopped socket passes, besides its descriptors (the
// XSK and the UMEM memfd), to the process that adopts it (Adopt): the
// options it was opened with and where each frame is.
//
// The rings need nothing passed: their producer and consumer indices live
// in the ring memory the kernel shares with every process that maps it.
// Frame ownership is passed exactly, one byte per frame, because a frame
// the kernel holds between two rings (taken from the fill ring and not
// yet on the rx ring, or sent and not yet on the completion ring) is on no
// ring and only its last owner knows which way it will come back. Adopt
// checks the passed ownership against the rings.
type Handoff struct {
	Queue    int
	Opts     Opts
	ZeroCopy bool
	// Frames[i] is frame i's owner: FrameFree, FrameFillSide (fill ring,
	// the kernel's receive path, rx ring) or FrameTxSide (tx ring, the
	// kernel's transmit path, completion ring). No frame is held by the
	// worker at a hand-over.
	Frames []uint8
}

// Frame owners in Handoff.Frames.
const (
	FrameFree     = stFree
	FrameFillSide = stFill
	FrameTxSide   = stTx
)

// ErrHeld is Handoff's error while the worker holds frames: stop it at a
// batch boundary first (every received frame transmitted or recycled).
var ErrHeld = errors.New("rings: frames are held by the worker")

// Handoff is the hand-over of a socket, real or over Memory, whose worker
// is stopped and holds no frame (ErrHeld otherwise). A real socket's
// descriptors go with it (FD, UMEMFile). The socket must not be used again
// once the other process has adopted it, except to Close it, which leaves
// the adopted copy working.
func (s *Socket) Handoff() (Handoff, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Handoff{}, ErrClosed
	}
	if s.held != 0 {
		return Handoff{}, fmt.Errorf("%w: %d on queue %d", ErrHeld, s.held, s.queue)
	}
	return Handoff{Queue: s.queue, Opts: s.opts, ZeroCopy: s.zeroCopy, Frames: append([]uint8(nil), s.state...)}, nil
}

// AdoptMemory is Adopt for a socket over Memory (OpenMemory): a second
// Socket over the same rings and UMEM, continuing where h says, as the
// process taking over sees a real one. Use and close only one of the two.
func AdoptMemory(m *Memory, h Handoff) (*Socket, error) {
	o := h.Opts
	if err := o.Validate(); err != nil {
		return nil, err
	}
	mem := func(r *RingIndex, size uint32) ringMem {
		return ringMem{producer: &r.Producer, consumer: &r.Consumer, flags: &r.Flags, size: size}
	}
	s := &Socket{fd: -1, queue: h.Queue}
	s.memoryPoll()
	if err := s.adopt(o, m.UMEM, mem(&m.Fill, o.FillSize), mem(&m.Completion, o.CompletionSize),
		mem(&m.Rx, o.RxSize), mem(&m.Tx, o.TxSize),
		m.FillAddrs, m.CompletionAddrs, m.RxDescs, m.TxDescs, h.Frames); err != nil {
		return nil, err
	}
	return s, nil
}

// adopt is init for a socket whose rings and frames are already in use:
// the rings start at the indices found in their shared memory and every
// frame's owner is h.Frames, checked against the rings — each entry on the
// fill and rx rings must be a fill-side frame, each on the tx and
// completion rings a tx-side one. Nothing is put on the fill ring here:
// the first Service does that.
func (s *Socket) adopt(o Opts, umem []byte, fill, comp, rx, tx ringMem,
	fillAddrs, compAddrs []uint64, rxDescs, txDescs []Desc, frames []uint8) error {
	if uint32(len(frames)) != o.FrameCount {
		return fmt.Errorf("rings: adopt: %d frame owners for %d frames", len(frames), o.FrameCount)
	}
	s.setup(o, umem, fill, comp, rx, tx, fillAddrs, compAddrs, rxDescs, txDescs)
	for i := int64(o.FrameCount) - 1; i >= 0; i-- {
		switch frames[i] {
		case stFree:
			s.free.push(uint64(i) << s.frameShift)
		case stFill:
		case stTx:
			s.txOut++
		default:
			return fmt.Errorf("rings: adopt: frame %d has owner %d: want free, fill side or tx side", i, frames[i])
		}
	}
	copy(s.state, frames)
	check := func(name string, r *ring, want uint8, addr func(i uint32) uint64) error {
		for i := r.cachedCons; i != r.cachedProd; i++ {
			a := addr(i & r.mask)
			chunk := a >> s.frameShift
			if chunk >= uint64(o.FrameCount) || s.state[chunk] != want {
				return fmt.Errorf("rings: adopt: the %s ring holds address %#x, which the hand-over does not place there", name, a)
			}
		}
		return nil
	}
	for _, c := range []struct {
		name string
		r    *ring
		want uint8
		addr func(uint32) uint64
	}{
		{"fill", &s.fill, stFill, func(i uint32) uint64 { return fillAddrs[i] }},
		{"rx", &s.rx, stFill, func(i uint32) uint64 { return rxDescs[i].Addr }},
		{"tx", &s.tx, stTx, func(i uint32) uint64 { return txDescs[i].Addr }},
		{"completion", &s.comp, stTx, func(i uint32) uint64 { return compAddrs[i] }},
	} {
		if n := c.r.cachedProd - c.r.cachedCons; n > c.r.size {
			return fmt.Errorf("rings: adopt: the %s ring has %d entries, more than its size %d", c.name, n, c.r.size)
		}
		if err := check(c.name, c.r, c.want, c.addr); err != nil {
			return err
		}
	}
	s.publish()
	return nil
}

// Opts returns the options the socket was opened with (defaults filled
// in). Safe from any goroutine.
func (s *Socket) Opts() Opts { return s.opts }
