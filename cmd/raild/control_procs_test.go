package main

import "testing"

// TestControlProcs: GOMAXPROCS leaves, besides a P per busy-polling
// worker, at least one per control-plane CPU and enough for the
// collector's dedicated mark workers (a quarter of all Ps, rounded) with
// one P to spare.
func TestControlProcs(t *testing.T) {
	for _, tc := range []struct{ workers, control, want int }{
		{1, 1, 3}, {4, 0, 7}, {2, 6, 8}, {16, 1, 23},
	} {
		if got := controlProcs(tc.workers, tc.control); got != tc.want {
			t.Errorf("controlProcs(%d, %d) = %d, want %d", tc.workers, tc.control, got, tc.want)
		}
	}
	for w := 0; w <= 128; w++ {
		for c := 0; c <= 8; c++ {
			p := controlProcs(w, c)
			dedicated := (p + 2) / 4 // round(0.25 p)
			if p-w < max(c, dedicated+1) {
				t.Errorf("controlProcs(%d, %d) = %d: %d Ps besides the workers, want at least %d and %d", w, c, p, p-w, c, dedicated+1)
			}
		}
	}
}
