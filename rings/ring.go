package rings

import "sync/atomic"

// ring is the index half of one single-producer/single-consumer ring shared
// with the kernel. The entries live in a separate slice of the same mapping
// (fill/completion: []uint64 addresses; rx/tx: []Desc).
//
// Indices are free-running uint32 counters; an entry's slot is index&mask
// and the number of entries on the ring is producer-consumer, which stays
// right across the 2^32 wrap because the ring size is a power of two.
//
// Memory ordering: the kernel is the other party and runs on other CPUs.
// Producer side: write the entries, then store the producer index with
// release semantics so the kernel never sees an index that covers entries
// not yet written. Consumer side: load the producer index with acquire
// semantics before reading the entries it covers, and store our consumer
// index (release) only after we are done reading them, so the kernel can't
// overwrite a slot we are still reading. Go's sync/atomic operations are
// sequentially consistent, which is at least acquire/release, and they also
// keep the compiler from caching or reordering the shared index.
//
// cachedProd/cachedCons are our private copies; the shared indices are
// touched only when the cached view runs out (peek/reserve) or when we
// publish (submit/release).
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	mask     uint32
	size     uint32

	cachedProd uint32
	cachedCons uint32
}

func newRing(producer, consumer, flags *uint32, size uint32) ring {
	r := ring{producer: producer, consumer: consumer, flags: flags, mask: size - 1, size: size}
	r.cachedProd = atomic.LoadUint32(producer)
	r.cachedCons = atomic.LoadUint32(consumer)
	return r
}

// reserve (producer side) returns how many of n slots are free, starting
// at index r.cachedProd. It reloads the consumer only when the cached
// view has fewer than n free slots.
func (r *ring) reserve(n uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free < n {
		r.cachedCons = atomic.LoadUint32(r.consumer) // acquire: the kernel is done with those slots
		free = r.size - (r.cachedProd - r.cachedCons)
	}
	if free < n {
		return free
	}
	return n
}

// submit (producer side) publishes n entries written at r.cachedProd.
func (r *ring) submit(n uint32) {
	r.cachedProd += n
	atomic.StoreUint32(r.producer, r.cachedProd) // release: entries before index
}

// peek (consumer side) returns how many of up to n entries are available,
// starting at index r.cachedCons.
func (r *ring) peek(n uint32) uint32 {
	avail := r.cachedProd - r.cachedCons
	if avail < n {
		r.cachedProd = atomic.LoadUint32(r.producer) // acquire: index before entries
		avail = r.cachedProd - r.cachedCons
	}
	if avail < n {
		return avail
	}
	return n
}

// release (consumer side) hands n read entries back to the producer.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.consumer, r.cachedCons) // release: done reading before index
}

// needWakeup reports whether the kernel set XDP_RING_NEED_WAKEUP.
func (r *ring) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&ringNeedWakeup != 0
}

// pending is how many entries are on the ring as seen from any goroutine:
// consumer is loaded first so that the later producer load can't be behind it.
func (r *ring) pending() uint32 {
	c := atomic.LoadUint32(r.consumer)
	p := atomic.LoadUint32(r.producer)
	return p - c
}

// ringNeedWakeup is XDP_RING_NEED_WAKEUP from <linux/if_xdp.h>.
const ringNeedWakeup = 1

// freeStack is the O(1) stack of free frame base addresses.
type freeStack struct {
	addrs []uint64 // fixed capacity == FrameCount; never grows
	n     uint32
}

func newFreeStack(capacity uint32) freeStack {
	return freeStack{addrs: make([]uint64, capacity)}
}

func (s *freeStack) push(addr uint64) bool {
	if s.n >= uint32(len(s.addrs)) {
		return false
	}
	s.addrs[s.n] = addr
	s.n++
	return true
}

func (s *freeStack) pop() (uint64, bool) {
	if s.n == 0 {
		return 0, false
	}
	s.n--
	return s.addrs[s.n], true
}

func atomicLoad(p *uint32) uint32 { return atomic.LoadUint32(p) }
