package pipeline

import "math/bits"

// flowHash hashes an IPv4 5-tuple with the snapshot's keys (derived from
// hash_seed). Two 64-bit words are multiplied as 128 bits and folded
// (a "mum" step as in wyhash), then finalised; the result is the same on
// every machine for the same seed, which is what lets a fleet agree
// without talking.
func flowHash(k flowKey, k0, k1 uint64) uint64 {
	hi, lo := bits.Mul64(k.addrs^k0, k.rest^k1)
	h := hi ^ lo
	h ^= h >> 32
	return h
}

// splitmix64 derives well-spread keys from a user-provided seed.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
