package ringstest

import (
	"sync/atomic"

	"github.com/rail-lb/rail/rings"
)

// RxOffset is where Deliver puts a frame's data: XDP_PACKET_HEADROOM
// bytes into the frame, after the UMEM headroom of the socket's Opts.
const RxOffset = 256

// Kernel is the other side of one memory socket's rings.
type Kernel struct {
	m        rings.Memory
	o        rings.Opts
	fillCons uint32 // the kernel's cached consumer of the fill ring
	txCons   uint32 // ... of the tx ring
	rxProd   uint32 // the kernel's cached producer of the rx ring
	compProd uint32 // ... of the completion ring
	rxOff    uint64
	// Taken from fill and not yet on rx; sent from tx and not yet on completion.
	inFlightRx, inFlightTx fifo
}

// New opens a memory socket with o whose ring indices all start at start
// (near 2^32 to exercise the wrap) and returns it with its kernel.
func New(o rings.Opts, start uint32) (*rings.Socket, *Kernel, error) {
	k := &Kernel{
		o:          o,
		inFlightRx: newFifo(o.FrameCount),
		inFlightTx: newFifo(o.FrameCount),
		rxOff:      RxOffset + uint64(o.Headroom),
	}
	for _, r := range []*rings.RingIndex{&k.m.Fill, &k.m.Completion, &k.m.Rx, &k.m.Tx} {
		r.Producer, r.Consumer = start, start
	}
	k.fillCons, k.txCons, k.rxProd, k.compProd = start, start, start, start
	s, err := rings.OpenMemory(o, &k.m)
	if err != nil {
		return nil, nil, err
	}
	return s, k, nil
}

// SetTxNeedWakeup sets or clears the tx ring's need_wakeup flag (copy
// mode: always set).
func (k *Kernel) SetTxNeedWakeup(on bool) { setFlag(&k.m.Tx.Flags, on) }

// SetFillNeedWakeup sets or clears the fill ring's need_wakeup flag.
func (k *Kernel) SetFillNeedWakeup(on bool) { setFlag(&k.m.Fill.Flags, on) }

func setFlag(p *uint32, on bool) {
	v := uint32(0)
	if on {
		v = rings.NeedWakeup
	}
	atomic.StoreUint32(p, v)
}

// Take moves up to n frames from the fill ring into the kernel and
// returns how many it took.
func (k *Kernel) Take(n int) int {
	prod := atomic.LoadUint32(&k.m.Fill.Producer)
	i := 0
	for ; i < n && k.fillCons != prod && !k.inFlightRx.full(); i++ {
		k.inFlightRx.push(k.m.FillAddrs[k.fillCons&uint32(len(k.m.FillAddrs)-1)])
		k.fillCons++
	}
	atomic.StoreUint32(&k.m.Fill.Consumer, k.fillCons)
	return i
}

// Deliver puts up to n taken frames on the rx ring, each with length
// bytes of data at RxOffset (whatever the frame holds), and returns how
// many; it stops when the rx ring is full.
func (k *Kernel) Deliver(n int, length uint32) int {
	i := 0
	for ; i < n && k.deliver(nil, length); i++ {
	}
	k.publishRx()
	return i
}

// DeliverFrame copies pkt into the next taken frame at RxOffset and puts
// it on the rx ring, as the kernel does with a received packet. It
// reports false (and delivers nothing) when no frame is taken, the rx ring
// is full or pkt does not fit.
func (k *Kernel) DeliverFrame(pkt []byte) bool {
	if uint64(len(pkt)) > uint64(k.o.FrameSize)-k.rxOff {
		return false
	}
	ok := k.deliver(pkt, uint32(len(pkt)))
	k.publishRx()
	return ok
}

func (k *Kernel) deliver(pkt []byte, length uint32) bool {
	cons := atomic.LoadUint32(&k.m.Rx.Consumer)
	if k.inFlightRx.len() == 0 || k.rxProd-cons >= uint32(len(k.m.RxDescs)) {
		return false
	}
	addr := k.inFlightRx.peek() + k.rxOff
	copy(k.m.UMEM[addr:], pkt)
	k.inFlightRx.pop()
	k.m.RxDescs[k.rxProd&uint32(len(k.m.RxDescs)-1)] = rings.Desc{Addr: addr, Len: length}
	k.rxProd++
	return true
}

func (k *Kernel) publishRx() { atomic.StoreUint32(&k.m.Rx.Producer, k.rxProd) }

// Send consumes up to n descriptors from the tx ring ("sends" them: their
// frames are in flight until Complete) and returns how many.
func (k *Kernel) Send(n int) int { return k.SendFunc(n, nil) }

// SendFunc is Send that also hands each sent packet (the descriptor's
// bytes in the UMEM) to f, if f is not nil. pkt is valid only during the
// call.
func (k *Kernel) SendFunc(n int, f func(pkt []byte)) int {
	prod := atomic.LoadUint32(&k.m.Tx.Producer)
	i := 0
	for ; i < n && k.txCons != prod && !k.inFlightTx.full(); i++ {
		d := k.m.TxDescs[k.txCons&uint32(len(k.m.TxDescs)-1)]
		if f != nil {
			f(k.m.UMEM[d.Addr : d.Addr+uint64(d.Len)])
		}
		k.inFlightTx.push(d.Addr)
		k.txCons++
	}
	atomic.StoreUint32(&k.m.Tx.Consumer, k.txCons)
	return i
}

// Complete puts up to n sent frames on the completion ring and returns
// how many; it stops when the completion ring is full.
func (k *Kernel) Complete(n int) int {
	cons := atomic.LoadUint32(&k.m.Completion.Consumer)
	i := 0
	for ; i < n && k.inFlightTx.len() > 0 && k.compProd-cons < uint32(len(k.m.CompletionAddrs)); i++ {
		k.m.CompletionAddrs[k.compProd&uint32(len(k.m.CompletionAddrs)-1)] = k.inFlightTx.peek()
		k.inFlightTx.pop()
		k.compProd++
	}
	atomic.StoreUint32(&k.m.Completion.Producer, k.compProd)
	return i
}

// CompleteAddr puts addr on the completion ring whether or not it was
// sent: a misbehaving kernel, to test that the socket refuses it. It
// reports false when the completion ring is full.
func (k *Kernel) CompleteAddr(addr uint64) bool {
	cons := atomic.LoadUint32(&k.m.Completion.Consumer)
	if k.compProd-cons >= uint32(len(k.m.CompletionAddrs)) {
		return false
	}
	k.m.CompletionAddrs[k.compProd&uint32(len(k.m.CompletionAddrs)-1)] = addr
	k.compProd++
	atomic.StoreUint32(&k.m.Completion.Producer, k.compProd)
	return true
}

// RxPending is how many descriptors wait on the rx ring for Receive.
func (k *Kernel) RxPending() int {
	return int(k.rxProd - atomic.LoadUint32(&k.m.Rx.Consumer))
}

// TxPending is how many descriptors wait on the tx ring for Send.
func (k *Kernel) TxPending() int {
	return int(atomic.LoadUint32(&k.m.Tx.Producer) - k.txCons)
}

// InFlight is how many frames the kernel holds: taken from the fill ring
// and not delivered, and sent and not completed.
func (k *Kernel) InFlight() (rx, tx int) { return k.inFlightRx.len(), k.inFlightTx.len() }

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
