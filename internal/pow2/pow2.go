// Package pow2 is the one place Rail tests for and rounds up to powers of
// two: ring sizes, hash-table sizes and the sizes the configuration
// accepts all go through it.
package pow2

// Int is the integer types sizes come in.
type Int interface {
	~int | ~uint32 | ~uint64
}

// Is reports whether v is a power of two (1, 2, 4, …).
func Is[T Int](v T) bool { return v > 0 && v&(v-1) == 0 }

// Ceil returns the smallest power of two that is at least v (1 for v ≤ 1).
// A v above the largest power of two of its type wraps to 0.
func Ceil[T Int](v T) T {
	p := T(1)
	for p < v && p != 0 {
		p <<= 1
	}
	return p
}
