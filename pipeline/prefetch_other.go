//go:build !amd64 || rail_noasm

package pipeline

// fetchFirst loads from the buckets of the chunk's n frames, in a loop of
// its own of a few instructions a frame: both cache lines of an
// IPv4 bucket (two entries each), all four of an IPv6 one (an entry a
// line; loading only the first two was 9–15 % slower at 1M and 4M flows,
// the flows in the other two then missing one after another).
//
// Go has no prefetch intrinsic; an early, independent load works as one,
// but a load that misses holds back every instruction after it from
// retiring until it returns, so the core has only as many misses in
// flight as its window holds loads. Here the window is full of them — a
// whole chunk's misses overlap — where loads interleaved with the
// processing (one loaded a few frames ahead) would have only two or
// three in flight, and were measured twice as slow as this at 1M and 4M
// flows (on amd64, where prefetch_amd64.go's prefetches now do better).
// Process's own loads of these entries then hit the cache. The sum it
// keeps is never read; it makes sure the compiler keeps the loads.
func (w *Worker) fetchFirst(n int) {
	ct := w.ct
	var sum uint32
	for _, x := range w.staged[:n] {
		switch {
		case x < stagedV6:
			b := &ct.buckets[x]
			sum += b[0].deadline + b[2].deadline
		case x != stagedNone:
			b := &ct.buckets6[x&^stagedV6]
			sum += b[0].deadline + b[1].deadline + b[2].deadline + b[3].deadline
		}
	}
	w.touchSum += sum
}

// fetchGroup: fetchAhead is called once a chunk, and does nothing here.
const fetchGroup = Batch

// fetchAhead does nothing here: fetchFirst has loaded the whole chunk.
func (w *Worker) fetchAhead(i, n int) {}
