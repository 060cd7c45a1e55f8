package maglev

import "testing"

func TestIsPrimeSieve(t *testing.T) {
	const n = 200_000
	composite := make([]bool, n)
	composite[0], composite[1] = true, true
	for i := 2; i*i < n; i++ {
		if !composite[i] {
			for j := i * i; j < n; j += i {
				composite[j] = true
			}
		}
	}
	for i := range n {
		if IsPrime(uint32(i)) != !composite[i] {
			t.Fatalf("IsPrime(%d) = %v", i, IsPrime(uint32(i)))
		}
	}
}

func TestPrimes(t *testing.T) {
	for _, tc := range []struct {
		n     uint32
		prime bool
		next  uint32
	}{
		{0, false, 2},
		{1, false, 2},
		{2, true, 2},
		{3, true, 3},
		{4, false, 5},
		{65536, false, 65537},
		{65537, true, 65537},
		{655373, true, 655373},
		{655372, false, 655373},
		{4294967291, true, 4294967291}, // the largest uint32 prime
		{4294967292, false, 0},
		{4294967295, false, 0},
		{4294967279, true, 4294967279},
		{65521 * 65519, false, 4292870401}, // product of the two largest 16-bit primes
	} {
		if got := IsPrime(tc.n); got != tc.prime {
			t.Errorf("IsPrime(%d) = %v, want %v", tc.n, got, tc.prime)
		}
		if got := NextPrime(tc.n); got != tc.next {
			t.Errorf("NextPrime(%d) = %d, want %d", tc.n, got, tc.next)
		}
	}
}
