package hashing

import (
	"fmt"
	"math"
	"slices"

	"github.com/rail-lb/rail/maglev"
)

// Picker maps a hash to the index of a backend in the slice it was built
// from, or −1 when no backend has a positive weight.
type Picker interface {
	Pick(h uint64) int
	// Slot returns the owner of table slot i of an M-slot table.
	Slot(i uint32) int
}

// Algorithm builds a Picker for backends with table size m (ignored by the
// table-less algorithms except for Slot) and seed.
type Algorithm struct {
	Name string
	New  func(bs []maglev.Backend, m uint32, seed uint64) (Picker, error)
}

// Algorithms returns Maglev, rendezvous and a ring with vnodes virtual
// nodes per unit of mean weight, in that order.
func Algorithms(vnodes int) []Algorithm {
	return []Algorithm{
		{"maglev", func(bs []maglev.Backend, m uint32, seed uint64) (Picker, error) {
			t, err := maglev.New(bs, m, seed)
			if err != nil {
				return nil, err
			}
			return Maglev{t}, nil
		}},
		{"rendezvous", func(bs []maglev.Backend, _ uint32, seed uint64) (Picker, error) {
			return NewRendezvous(bs, seed), nil
		}},
		{"ring", func(bs []maglev.Backend, _ uint32, seed uint64) (Picker, error) {
			return NewRing(bs, vnodes, seed)
		}},
	}
}

// Maglev adapts a maglev.Table.
type Maglev struct{ T *maglev.Table }

func (m Maglev) Pick(h uint64) int { return index(m.T.Lookup(h)) }
func (m Maglev) Slot(i uint32) int { return index(m.T.Lookup(uint64(i))) }

func index(b uint16) int {
	if b == maglev.NoBackend {
		return -1
	}
	return int(b)
}

// Rendezvous is highest-random-weight hashing over the backends with a
// positive weight.
type Rendezvous struct {
	keys  []uint64  // keyHash per candidate
	w     []float64 // weight per candidate; nil when all are equal
	index []int     // candidate → index in the caller's slice
}

// NewRendezvous builds a rendezvous picker. Backends with weight 0 are
// never picked.
func NewRendezvous(bs []maglev.Backend, seed uint64) *Rendezvous {
	r := &Rendezvous{}
	equal := true
	for i, b := range bs {
		if b.Weight == 0 {
			continue
		}
		if len(r.w) > 0 && uint32(r.w[0]) != b.Weight {
			equal = false
		}
		r.keys = append(r.keys, keyHash(seed, b.Key))
		r.w = append(r.w, float64(b.Weight))
		r.index = append(r.index, i)
	}
	if equal {
		r.w = nil
	}
	return r
}

func (r *Rendezvous) Slot(i uint32) int { return r.Pick(SlotPoint(i)) }

func (r *Rendezvous) Pick(h uint64) int {
	best := -1
	if r.w == nil {
		// Equal weights: the largest 64-bit score wins.
		var top uint64
		for i, k := range r.keys {
			if s := mix64(k ^ h); best < 0 || s > top {
				best, top = i, s
			}
		}
	} else {
		// −w / ln(u) is largest for the winner; u in (0, 1) from the
		// score's top 53 bits.
		top := math.Inf(-1)
		for i, k := range r.keys {
			u := (float64(mix64(k^h)>>11) + 0.5) * (1.0 / (1 << 53))
			if s := -r.w[i] / math.Log(u); s > top {
				best, top = i, s
			}
		}
	}
	if best < 0 {
		return -1
	}
	return r.index[best]
}

// Ring is Karger consistent hashing: sorted points on a 64-bit circle,
// each owned by one backend.
type Ring struct {
	points []uint64
	owner  []int32
}

// NewRing builds a ring where a backend of weight w gets
// round(vnodes · w / mean weight) points (at least one), so that the
// total is about vnodes · N. Backends with weight 0 get none.
func NewRing(bs []maglev.Backend, vnodes int, seed uint64) (*Ring, error) {
	if vnodes <= 0 {
		return nil, fmt.Errorf("ring: vnodes must be positive, got %d", vnodes)
	}
	var sum float64
	active := 0
	for _, b := range bs {
		if b.Weight > 0 {
			sum += float64(b.Weight)
			active++
		}
	}
	type point struct {
		p     uint64
		owner int32
	}
	var ps []point
	for i, b := range bs {
		if b.Weight == 0 {
			continue
		}
		n := max(1, int(math.Round(float64(vnodes)*float64(b.Weight)*float64(active)/sum)))
		k := keyHash(seed, b.Key)
		for j := range n {
			ps = append(ps, point{mix64(k + uint64(j+1)*0x9e3779b97f4a7c15), int32(i)})
		}
	}
	// Ties (two equal 64-bit points) are broken by index so the ring is
	// the same whatever the input order of equal points.
	slices.SortFunc(ps, func(a, b point) int {
		if a.p != b.p {
			if a.p < b.p {
				return -1
			}
			return 1
		}
		return int(a.owner - b.owner)
	})
	r := &Ring{points: make([]uint64, len(ps)), owner: make([]int32, len(ps))}
	for i, p := range ps {
		r.points[i], r.owner[i] = p.p, p.owner
	}
	return r, nil
}

func (r *Ring) Slot(i uint32) int { return r.Pick(SlotPoint(i)) }

func (r *Ring) Pick(h uint64) int {
	n := len(r.points)
	if n == 0 {
		return -1
	}
	// First point ≥ h, wrapping to the first point.
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.points[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == n {
		lo = 0
	}
	return int(r.owner[lo])
}
