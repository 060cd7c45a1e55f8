package hashing

// mix64 is a bijective 64-bit finaliser (MurmurHash3's fmix64): every
// input bit flips about half the output bits.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// keyHash hashes a backend key under seed: FNV-1a over the bytes, then
// mix64 so that similar keys ("10.0.0.1", "10.0.0.2") land far apart.
func keyHash(seed uint64, key string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 0x100000001b3
	}
	return mix64(h ^ mix64(seed^0x72656e64657a766f))
}

// SlotPoint is the hash that stands for table slot i when ring and
// rendezvous are asked to fill an M-slot table.
func SlotPoint(i uint32) uint64 { return mix64(uint64(i) + 0x9e3779b97f4a7c15) }

// Flow is an IPv4 5-tuple.
type Flow struct {
	Src, Dst     [4]byte
	Sport, Dport uint16
	Proto        uint8
}

// Hash is the flow's 64-bit hash under seed.
func (f Flow) Hash(seed uint64) uint64 {
	a := uint64(f.Src[0])<<24 | uint64(f.Src[1])<<16 | uint64(f.Src[2])<<8 | uint64(f.Src[3])
	b := uint64(f.Dst[0])<<24 | uint64(f.Dst[1])<<16 | uint64(f.Dst[2])<<8 | uint64(f.Dst[3])
	c := uint64(f.Sport)<<24 | uint64(f.Dport)<<8 | uint64(f.Proto)
	h := mix64(seed ^ (a<<32 | b))
	return mix64(h ^ c*0x9e3779b97f4a7c15)
}
