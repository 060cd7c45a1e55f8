package maglev

// IsPrime reports whether n is a prime number.
func IsPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	if n%3 == 0 {
		return n == 3
	}
	// Trial division by 6k±1 up to √n: at most ~11,000 divisions for any
	// uint32, which is nothing next to building a table.
	m := uint64(n)
	for d := uint64(5); d*d <= m; d += 6 {
		if m%d == 0 || m%(d+2) == 0 {
			return false
		}
	}
	return true
}

// NextPrime returns the smallest prime ≥ n, or 0 if there is none that
// fits in a uint32 (n > 4294967291). Error messages use it to suggest a
// valid table size.
func NextPrime(n uint32) uint32 {
	if n <= 2 {
		return 2
	}
	for p := uint64(n | 1); p <= 1<<32-1; p += 2 {
		if IsPrime(uint32(p)) {
			return uint32(p)
		}
	}
	return 0
}
