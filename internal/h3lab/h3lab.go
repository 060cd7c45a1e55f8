package h3lab

import (
	"crypto/sha256"
	"io"
)

// Body is the deterministic body of GET /bytes?n=N&seed=S: n octets of a
// sequence fixed by seed.
type Body struct {
	seed uint64
	left int64
	i    uint64
}

// NewBody returns the body for seed of n octets.
func NewBody(seed uint64, n int64) *Body { return &Body{seed: seed, left: n} }

// Read fills p with the next octets.
func (b *Body) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), b.left)
	for k := range p[:n] {
		// A 64-bit mix of (seed, position): no two seeds, no two offsets
		// alike, so a misplaced or foreign chunk shows.
		x := (b.i + uint64(k)) ^ b.seed*0x9e3779b97f4a7c15
		x ^= x >> 31
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 29
		p[k] = byte(x)
	}
	b.i += uint64(n)
	b.left -= n
	return int(n), nil
}

// Sum is the SHA-256 of the body for seed of n octets.
func Sum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, NewBody(seed, n))
	var s [32]byte
	h.Sum(s[:0])
	return s
}
