package control

// isPrime reports whether n is prime, by trial division: table sizes are at
// most MaxTableSize, so this takes at most a few thousand steps.
func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := uint64(3); d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// nextPrime returns the smallest prime ≥ n.
func nextPrime(n uint64) uint64 {
	if n <= 2 {
		return 2
	}
	n |= 1
	for !isPrime(n) {
		n += 2
	}
	return n
}

// prevPrime returns the largest prime ≤ n, or 2 when n < 2.
func prevPrime(n uint64) uint64 {
	for n > 2 && !isPrime(n) {
		n--
	}
	return max(n, 2)
}

// primeNear is the table size to suggest instead of n: the next prime, or
// the largest allowed prime when the next one is too large.
func primeNear(n uint64) uint64 {
	if n > MaxTableSize {
		return prevPrime(MaxTableSize)
	}
	if p := nextPrime(n); p <= MaxTableSize {
		return p
	}
	return prevPrime(MaxTableSize)
}
