//go:build amd64 && !rail_noasm

package pipeline

import "unsafe"

// prefetchStaged asks the memory system for every cache line of the n
// staged buckets from staged on (prefetch_amd64.s): both lines of an IPv4
// bucket, all four of an IPv6 one. A prefetch retires without waiting
// for its line, so the misses stay in flight while frames are processed.
//
//go:noescape
func prefetchStaged(bases *[2]unsafe.Pointer, staged *uint32, n int)

// The prefetch schedule: the buckets of the frame fetchDistance frames
// ahead of the one processed are asked for, fetchGroup frames' worth per
// call. Measured (railbench pipeline --flows-sweep 1k,1M,4M, hugetlb
// pages), ns/packet at 1,000 / 1M / 4M flows: the whole batch prefetched
// before the first frame 29.7 / 51.1 / 63.7; a frame at a time 8 ahead
// 29.0 / 46.5 / 57.1, 16 ahead 28.5 / 45.0 / 58.0, 32 ahead 28.7 / 47.6 /
// 60.0; 4 frames at a time 8 ahead 28.4 / 47.0 / 58.1 — with a quarter of
// the calls. The loads of prefetch_other.go, for comparison: 30.7 / 54.0
// / 67.9.
const (
	fetchDistance = 8
	fetchGroup    = 4
)

// A group starts on a multiple of fetchGroup before n-fetchDistance, so
// its last entry is at most Batch-1 only if fetchDistance is a multiple of
// fetchGroup (and both of Batch): a compile-time check. prefetchStaged's
// shifts are the bucket sizes (TestBucketSizes).
const _ uint = -(fetchDistance%fetchGroup + Batch%fetchGroup)

// fetchFirst asks for the buckets of the first fetchDistance frames of a
// chunk of n, before the first is processed.
func (w *Worker) fetchFirst(n int) {
	prefetchStaged(&w.ct.bases, &w.staged[0], min(n, fetchDistance))
}

// fetchAhead, called before the i-th frame of a chunk of n (≤ Batch) is
// processed when i is a multiple of fetchGroup, asks for the buckets of
// the fetchGroup frames from fetchDistance ahead. The chunk's last group
// may reach past n into entries a previous chunk staged: buckets of this
// table all the same, a wasted prefetch at most (a group starts at most at
// Batch-fetchGroup, so it stays in staged). It inlines: one call every
// fetchGroup frames.
func (w *Worker) fetchAhead(i, n int) {
	if i < n-fetchDistance {
		prefetchStaged(&w.ct.bases, &w.staged[i+fetchDistance], fetchGroup)
	}
}
