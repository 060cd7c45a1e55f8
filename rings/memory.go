package rings

import "fmt"

// Memory is the kernel's side of a Socket made by OpenMemory: the four
// rings' shared indices and entries and the UMEM, as the kernel sees them
// through its mappings of a real socket. Whoever holds it plays the kernel
// (package ringstest does), so that a Socket and the loop that drives it
// can be tested without a NIC or privileges.
//
// While the socket is in use, the indices are shared with it: load and
// store them atomically, producer after the entries it covers, as the
// kernel does (see ring).
type Memory struct {
	Fill, Completion, Rx, Tx RingIndex

	FillAddrs, CompletionAddrs []uint64 // entries of the fill and completion rings
	RxDescs, TxDescs           []Desc   // entries of the rx and tx rings
	UMEM                       []byte
}

// RingIndex is one ring's shared producer and consumer indices and its
// flags word (XDP_RING_NEED_WAKEUP is bit 0).
type RingIndex struct {
	Producer, Consumer, Flags uint32
}

// NeedWakeup is the bit of RingIndex.Flags by which the kernel asks for a
// wakeup system call (XDP_RING_NEED_WAKEUP).
const NeedWakeup = ringNeedWakeup

// OpenMemory returns a Socket over ordinary memory instead of a kernel's
// mappings. It allocates m's entries and UMEM for o (validated as by
// Open) and puts the first frames on the fill ring as Open does; m's
// indices may start anywhere (near the 2^32 wrap, to test it) and must
// stay where they are (m is not moved or copied) until Close.
//
// The socket has no file descriptor: FD is -1, the wakeup system calls
// fail and are counted as kick errors, Wait only sleeps for its timeout,
// and Stats fails (there are no kernel statistics). Receive, Transmit,
// Recycle, Take, Service, Frame and Frames behave exactly as on a real
// socket; Close releases the UMEM.
func OpenMemory(o Opts, m *Memory) (*Socket, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	umem, err := allocUMEM(int(o.FrameSize) * int(o.FrameCount))
	if err != nil {
		return nil, fmt.Errorf("rings: memory socket: UMEM of %d frames of %d bytes: %w", o.FrameCount, o.FrameSize, err)
	}
	m.FillAddrs = make([]uint64, o.FillSize)
	m.CompletionAddrs = make([]uint64, o.CompletionSize)
	m.RxDescs = make([]Desc, o.RxSize)
	m.TxDescs = make([]Desc, o.TxSize)
	m.UMEM = umem
	mem := func(r *RingIndex, size uint32) ringMem {
		return ringMem{producer: &r.Producer, consumer: &r.Consumer, flags: &r.Flags, size: size}
	}
	s := &Socket{fd: -1}
	s.memoryPoll()
	s.init(o, umem, mem(&m.Fill, o.FillSize), mem(&m.Completion, o.CompletionSize),
		mem(&m.Rx, o.RxSize), mem(&m.Tx, o.TxSize),
		m.FillAddrs, m.CompletionAddrs, m.RxDescs, m.TxDescs)
	return s, nil
}
