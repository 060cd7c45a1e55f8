package pow2

import (
	"math"
	"testing"
)

func TestIs(t *testing.T) {
	for v := -3; v < 5000; v++ {
		want := false
		for p := 1; p <= v; p <<= 1 {
			want = want || p == v
		}
		if Is(v) != want {
			t.Fatalf("Is(%d) = %v", v, !want)
		}
	}
	if !Is(uint64(1<<63)) || Is(uint32(math.MaxUint32)) {
		t.Fatal("Is at the top of the range")
	}
}

func TestCeil(t *testing.T) {
	cases := []struct{ v, want uint64 }{{0, 1}, {1, 1}, {2, 2}, {3, 4}, {1000, 1024}, {1024, 1024}, {1025, 2048}, {1<<63 - 1, 1 << 63}, {1<<63 + 1, 0}}
	for _, c := range cases {
		if got := Ceil(c.v); got != c.want {
			t.Errorf("Ceil(%d) = %d, want %d", c.v, got, c.want)
		}
	}
	if Ceil(-5) != 1 || Ceil(uint32(65537)) != 131072 {
		t.Error("Ceil of int and uint32")
	}
}
