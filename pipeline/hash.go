package pipeline

import "math/bits"

// flowHash hashes a flow key with the snapshot's keys (derived from
// hash_seed): each address is folded to one word and two 64×64→128-bit
// multiplications mix them with the ports and protocol (the "mum" step of
// wyhash). The result is the same on every machine for the same seed, which
// is what lets a fleet agree without talking.
func flowHash(k flowKey, k0, k1 uint64) uint64 {
	return flowHashWords(k.src.hi, k.src.lo, k.dst.hi, k.dst.lo, k.rest, k0, k1)
}

// flowHashWords is flowHash on the key's words, for the fast path, which
// keeps them in registers (a 40-byte struct never is).
func flowHashWords(srcHi, srcLo, dstHi, dstLo, rest, k0, k1 uint64) uint64 {
	a := srcLo ^ bits.RotateLeft64(srcHi, 29)
	b := dstLo ^ bits.RotateLeft64(dstHi, 31)
	hi, lo := bits.Mul64(a^k0, b^k1)
	hi, lo = bits.Mul64(hi^lo^rest, k0^k1^0x9e3779b97f4a7c15)
	return hi ^ lo
}

// splitmix64 derives well-spread keys from a user-provided seed.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
