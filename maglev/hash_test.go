package maglev

import "testing"

// TestSipHashVectors checks sipHash24 against the SipHash-2-4 reference
// test vectors: key 00 01 … 0f, message 00 01 … (n−1).
func TestSipHashVectors(t *testing.T) {
	const k0, k1 = 0x0706050403020100, 0x0f0e0d0c0b0a0908
	want := map[int]uint64{
		0:  0x726fdb47dd0e0e31,
		1:  0x74f839c593dc67fd,
		7:  0xab0200f58b01d137,
		8:  0x93f5f5799a932462,
		15: 0xa129ca6149be45e5,
		16: 0x3f2acc7f57c29bdb,
		63: 0x958a324ceb064572,
	}
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, w := range want {
		if got := sipHash24(k0, k1, string(msg[:n])); got != w {
			t.Errorf("SipHash-2-4 of %d bytes = %#016x, want %#016x", n, got, w)
		}
	}
}

// TestHashesPinned pins the permutation hashes themselves: if these change,
// every fleet's tables change, which must never happen silently.
func TestHashesPinned(t *testing.T) {
	for _, tc := range []struct {
		key    string
		seed   uint64
		h1, h2 uint64
	}{
		{"10.1.0.11", 0, 0x12036da5e112d852, 0x470a3e18273c1bcd},
		{"b2", 42, 0xfd9c32d480579023, 0x6121423ecb60d0a3},
	} {
		h1, h2 := sipHash24(tc.seed, tagOffset, tc.key), sipHash24(tc.seed, tagSkip, tc.key)
		if h1 != tc.h1 || h2 != tc.h2 {
			t.Errorf("h(%q, seed %d) = %#016x, %#016x; want %#016x, %#016x", tc.key, tc.seed, h1, h2, tc.h1, tc.h2)
		}
	}
}
