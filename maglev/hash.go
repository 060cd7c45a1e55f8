package maglev

import "math/bits"

// The two permutation hashes are SipHash-2-4 (Aumasson & Bernstein, 2012)
// of the backend key's bytes, keyed with the 128-bit key (seed, tag):
//
//	h1(key) = SipHash-2-4(k0 = seed, k1 = tagOffset, key)
//	h2(key) = SipHash-2-4(k0 = seed, k1 = tagSkip,   key)
//
// SipHash is a keyed pseudo-random function, so two different keys give
// two independent hashes. Everything is fixed-width unsigned arithmetic
// with little-endian word loads: every machine builds the same table.
const (
	tagOffset = 0x6d61676c65763a31 // "maglev:1" read as a big-endian word
	tagSkip   = 0x6d61676c65763a32 // "maglev:2"
)

// sipHash24 is SipHash-2-4 of msg under the key (k0, k1), written from the
// SipHash paper's description: four 64-bit lanes initialised from the key
// and the constants "somepseudorandomlygeneratedbytes", two SipRounds per
// 8-byte little-endian message word, a last word carrying the remaining
// bytes and len(msg) mod 256 in its top byte, then 0xff into v2 and four
// finalisation rounds.
func sipHash24(k0, k1 uint64, msg string) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573

	n := len(msg)
	for len(msg) >= 8 {
		m := le64(msg)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
		msg = msg[8:]
	}
	m := uint64(n) << 56
	for i := 0; i < len(msg); i++ {
		m |= uint64(msg[i]) << (8 * i)
	}
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= m

	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// le64 reads the first 8 bytes of s as a little-endian word.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
