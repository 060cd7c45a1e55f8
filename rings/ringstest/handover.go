package ringstest

import "github.com/rail-lb/rail/rings"

// Adopt is rings.Adopt over this kernel's rings: a second socket on the
// same memory, continuing from h (the first socket's Handoff), as a
// process taking over sees it. Use and close only one of the two.
func (k *Kernel) Adopt(h rings.Handoff) (*rings.Socket, error) { return rings.AdoptMemory(&k.m, h) }

// FillAddr is the address of the last frame put on the fill ring, for
// tests that corrupt a hand-over.
func (k *Kernel) FillAddr() uint64 {
	return k.m.FillAddrs[(k.m.Fill.Producer-1)&uint32(len(k.m.FillAddrs)-1)]
}
