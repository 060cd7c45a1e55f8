package maglev

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Backend is one entry of a pool as the table builder sees it.
type Backend struct {
	// Key names the backend in the hashes that place it: the backend's
	// configured name, else its address string. Keys must be unique and
	// non-empty; the same key gets the same preference list on every node.
	Key string
	// Weight is the backend's relative share of the table. 0 keeps the
	// backend out of the table entirely (drain).
	Weight uint32
}

// NoBackend is what Lookup returns when the table has no backend with a
// positive weight. It is never a valid index, which is why a table holds at
// most MaxBackends backends.
const NoBackend = ^uint16(0)

const (
	// MaxBackends is the largest pool New accepts: indices are uint16 and
	// NoBackend is reserved.
	MaxBackends = int(NoBackend)
	// MaxSize bounds the table size (64 MiB of slots) so that a typo in a
	// config cannot allocate gigabytes; the paper's sizes are 65537 and
	// 655373.
	MaxSize = 1 << 25
)

// Errors New wraps, for errors.Is. The messages read as a sentence around
// them, e.g. "table size 65536 is not prime (try 65537)".
var (
	ErrNotPrime     = errors.New("not prime")
	ErrSizeTooSmall = errors.New("too small")
	ErrSizeTooLarge = errors.New("too large")
	ErrDuplicateKey = errors.New("duplicate backend key")
	ErrEmptyKey     = errors.New("empty backend key")
	ErrTooMany      = errors.New("too many backends")
)

// Table is a Maglev lookup table: size slots, each holding the index of a
// backend in the slice given to New. It is immutable and pointer-free in
// its hot part, so one Table can be shared by every worker without locks.
type Table struct {
	slots []uint16 // len == size, or 0 when no backend has a positive weight
	size  uint32
	n     int // len(backends) given to New
}

// Lookup returns the index (into the backends given to New) of the backend
// that owns flow hash h: slots[h mod size]. It returns NoBackend when no
// backend has a positive weight. It does not allocate and is inlined into
// the per-packet path.
func (t *Table) Lookup(h uint64) uint16 {
	s := t.slots
	if len(s) == 0 {
		return NoBackend
	}
	return s[h%uint64(len(s))]
}

// Size returns the number of slots, the prime M given to New.
func (t *Table) Size() uint32 { return t.size }

// Shares returns, per backend index, how many slots the backend owns; a
// backend's share of new flows is Shares()[i] / Size(). It is for the
// control plane and tests, not the data path.
func (t *Table) Shares() []uint32 {
	c := make([]uint32, t.n)
	for _, b := range t.slots {
		c[b]++
	}
	return c
}

// builder is the per-backend population state. The permutation of the
// paper, permutation[i][j] = (offset + j·skip) mod M, is never stored: pos
// is permutation[i][next[i]] and advances by skip.
type builder struct {
	pos    uint32 // next preferred slot
	skip   uint32 // 1 ≤ skip < M
	weight uint32
	credit uint64 // fillRounds: accumulated weight, a turn costs maxWeight; fillHeap: turns taken
	index  uint16 // index in the caller's slice
}

// New builds the lookup table of the given prime size for backends, keyed
// by seed (the fleet-wide hash_seed). See the package documentation for the
// algorithm. The result depends only on the set of (Key, Weight) pairs,
// size and seed — not on the order of backends — while the slots hold
// indices into backends as given.
func New(backends []Backend, size uint32, seed uint64) (*Table, error) {
	if len(backends) > MaxBackends {
		return nil, fmt.Errorf("%w: %d backends (at most %d)", ErrTooMany, len(backends), MaxBackends)
	}
	order := make([]uint16, len(backends))
	for i := range order {
		order[i] = uint16(i)
	}
	slices.SortFunc(order, func(a, b uint16) int {
		return cmp.Or(cmp.Compare(backends[a].Key, backends[b].Key), cmp.Compare(a, b))
	})
	active := 0
	var maxWeight uint32
	for j, i := range order {
		b := backends[i]
		if b.Key == "" {
			return nil, fmt.Errorf("backends[%d]: %w", i, ErrEmptyKey)
		}
		if j > 0 && backends[order[j-1]].Key == b.Key {
			return nil, fmt.Errorf("backends[%d] and backends[%d]: %w %q", order[j-1], i, ErrDuplicateKey, b.Key)
		}
		if b.Weight > 0 {
			active++
			maxWeight = max(maxWeight, b.Weight)
		}
	}
	if err := checkSize(size, active); err != nil {
		return nil, err
	}

	t := &Table{size: size, n: len(backends)}
	if active == 0 {
		return t, nil
	}

	M := size
	bs := make([]builder, 0, active)
	for _, i := range order {
		b := backends[i]
		if b.Weight == 0 {
			continue
		}
		bs = append(bs, builder{
			pos:    uint32(sipHash24(seed, tagOffset, b.Key) % uint64(M)),
			skip:   uint32(sipHash24(seed, tagSkip, b.Key)%uint64(M-1)) + 1,
			weight: b.Weight,
			index:  i,
		})
	}

	slots := make([]uint16, M)
	for i := range slots {
		slots[i] = NoBackend
	}
	var sum uint64
	for k := range bs {
		sum += uint64(bs[k].weight)
	}
	// Both schedules give the same turns in the same order; the credit
	// rounds cost N steps per round and there are about M·W/Σw rounds,
	// so when the heaviest weight is far above the mean the turn heap
	// (log N per turn) is faster.
	if uint64(maxWeight)*uint64(len(bs)) <= heapAbove*sum && !forceHeap {
		fillRounds(slots, bs, maxWeight)
	} else {
		fillHeap(slots, bs, maxWeight)
	}
	t.slots = slots
	return t, nil
}

// heapAbove is the max/mean weight ratio above which New schedules turns
// with a heap. forceHeap lets tests compare the two schedules.
const heapAbove = 4

var forceHeap = false

// turn gives backend b its next turn: it claims its most preferred slot
// that is still empty. The caller guarantees an empty slot exists.
func turn(slots []uint16, b *builder, M uint32) {
	c := b.pos
	for slots[c] != NoBackend {
		// M ≤ MaxSize, so c+skip < 2M cannot overflow.
		c += b.skip
		if c >= M {
			c -= M
		}
	}
	slots[c] = b.index
	c += b.skip
	if c >= M {
		c -= M
	}
	b.pos = c
}

// fillRounds is the population by rounds: in each, every backend (in key
// order) earns its weight in credit and, when it has maxWeight, spends it
// on one turn. The heaviest backend takes a turn every round, so no round
// is empty; with equal weights every backend takes one turn per round —
// the paper's Pseudocode 1.
func fillRounds(slots []uint16, bs []builder, maxWeight uint32) {
	M := uint32(len(slots))
	mw := uint64(maxWeight)
	for filled := uint32(0); ; {
		for k := range bs {
			b := &bs[k]
			b.credit += uint64(b.weight)
			if b.credit < mw {
				continue
			}
			b.credit -= mw
			turn(slots, b, M)
			if filled++; filled == M {
				return
			}
		}
	}
}

// fillHeap gives the same turns as fillRounds without visiting idle
// backends. Under the credit rule a backend of weight w takes its t-th
// turn (t = 1, 2, …) in round ⌈t·W/w⌉, and within a round turns go in key
// order, so a min-heap ordered by (round, key order) yields the turns in
// exactly the order fillRounds takes them.
func fillHeap(slots []uint16, bs []builder, maxWeight uint32) {
	M := uint32(len(slots))
	W := uint64(maxWeight)
	next := func(k int32) uint64 { // round of backend k's next turn; credit counts its turns
		t := bs[k].credit + 1
		w := uint64(bs[k].weight)
		return (t*W + w - 1) / w
	}
	h := turnHeap{round: make([]uint64, len(bs)), items: make([]int32, len(bs))}
	for k := range bs {
		h.items[k] = int32(k)
		h.round[k] = next(int32(k))
	}
	for i := len(bs)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	for filled := uint32(0); ; {
		k := h.items[0]
		turn(slots, &bs[k], M)
		if filled++; filled == M {
			return
		}
		bs[k].credit++
		h.round[k] = next(k)
		h.down(0)
	}
}

// turnHeap is a binary min-heap of backend positions ordered by (round of
// the next turn, position); position is key order.
type turnHeap struct {
	round []uint64 // by position
	items []int32  // heap of positions
}

func (h *turnHeap) less(a, b int32) bool {
	return h.round[a] < h.round[b] || (h.round[a] == h.round[b] && a < b)
}

func (h *turnHeap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			return
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
}

func checkSize(size uint32, active int) error {
	switch {
	case size > MaxSize:
		return fmt.Errorf("table size %d is %w (at most %d)", size, ErrSizeTooLarge, MaxSize)
	case !IsPrime(size):
		return fmt.Errorf("table size %d is %w (try %d)", size, ErrNotPrime, NextPrime(max(size, uint32(active))))
	case uint64(size) < uint64(active):
		try := NextPrime(uint32(100 * active)) // the paper's M ≥ 100·N rule of thumb
		if try > MaxSize {
			try = NextPrime(uint32(active))
		}
		return fmt.Errorf("table size %d is %w for %d backends with weight > 0 (try %d)",
			size, ErrSizeTooSmall, active, try)
	}
	return nil
}
