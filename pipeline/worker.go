package pipeline

import (
	"sync/atomic"
	"time"

	"github.com/rail-lb/rail/quiclb"
)

// Stats are one worker's counters as published for scraping. Only the
// worker writes them, once per batch (Flush); anyone may read them.
type Stats struct {
	Reasons        [NumReasons]atomic.Uint64 // packets per reason; ReasonNone = tx
	Backends       [MaxBackendIDs]atomic.Uint64
	ConntrackHits  atomic.Uint64
	ConntrackMiss  atomic.Uint64
	ConntrackLive  atomic.Uint64
	ConntrackSlots atomic.Uint64
	// Later fragments that found their first fragment's choice, and those
	// that did not (they went by source, destination and protocol).
	FragHits, FragMisses atomic.Uint64
	// Packets of QUIC-LB services routed by their connection ID, and those
	// that went by the 5-tuple instead (docs/QUIC.md).
	QUICRouted, QUICFallback atomic.Uint64
	// Connection entries replaced to make room, and new flows not recorded
	// because their bucket was full of established connections.
	ConntrackEvicted, ConntrackRefused atomic.Uint64
	// FastPath counts the packets a fast path (fast.go) handled; the
	// rest of the forwarded ones went the general way.
	FastPath atomic.Uint64
	Batches  atomic.Uint64
}

// Packets returns the number of packets this worker has received: every
// packet gets exactly one reason.
func (s *Stats) Packets() uint64 {
	var n uint64
	for i := range s.Reasons {
		n += s.Reasons[i].Load()
	}
	return n
}

// Transmitted returns the number of frames this worker put on its tx ring:
// forwarded packets and ICMP too-big replies (frames the ring refused are
// moved to the tx_ring_full drop reason).
func (s *Stats) Transmitted() uint64 {
	return s.Reasons[ReasonNone].Load() + s.Reasons[ICMPTooBig].Load()
}

// Worker is the per-core state of the data path: its connection table, its
// counters and the snapshot it is processing the current batch with.
// A Worker is used by one goroutine at a time.
type Worker struct {
	snap  *Snapshot
	ct    *Conntrack
	now   uint32 // seconds since epoch, ≥ 1
	epoch time.Time

	reasons [NumReasons]uint64
	// Per-backend packets in this batch: counts by backend ID, and the IDs
	// touched, so that Flush costs what the batch touched, not MaxBackendIDs.
	backendCount [MaxBackendIDs]uint32
	touched      []uint16
	hits, misses uint64
	fastHits     uint64

	// QUIC-LB (quic.go): packets routed by connection ID, packets of a
	// QUIC-LB service that fell back to the 5-tuple, and Decode's buffers.
	quicRouted, quicFallback uint64
	quicScratch              quiclb.Scratch

	fragHits, fragMisses uint64

	stats *Stats

	// staged holds a chunk's buckets between its stages (batch.go);
	// touchSum sums what fetchFirst loaded from them (prefetch_other.go)
	// and is never read.
	staged   [Batch]uint32
	touchSum uint32
}

// NewWorker returns a worker with its own connection table.
func NewWorker(ct *Conntrack) *Worker {
	w := &Worker{
		ct:      ct,
		now:     1,
		touched: make([]uint16, 0, MaxBackendIDs),
		stats:   new(Stats),
	}
	w.stats.ConntrackSlots.Store(uint64(ct.Len()))
	return w
}

// Stats returns the worker's published counters.
func (w *Worker) Stats() *Stats { return w.stats }

// Begin starts a batch: it fixes the snapshot and the clock for the packets
// that follow. Call it once per batch, not per packet.
// The worker's clock starts at the first batch (replay passes capture
// times, which may lie in the past) and never goes back: a clock or a pcap
// that does just stands still.
func (w *Worker) Begin(s *Snapshot, now time.Time) {
	w.snap = s
	if w.epoch.IsZero() {
		w.epoch = now
	}
	d := now.Sub(w.epoch)
	if d < 0 {
		d = 0
	}
	if t := uint32(d/time.Second) + 1; t > w.now {
		w.now = t
	}
}

// untransmit takes back the counting of a frame Process forwarded but the
// tx ring refused: it is a tx_ring_full drop, not a transmitted packet.
func (w *Worker) untransmit(r Result) {
	w.reasons[r.Reason]--
	w.reasons[TxRingFull]++
	if r.Reason == ReasonNone {
		if id := w.snap.services[r.Service].backends[r.Backend].id; w.backendCount[id] > 0 {
			w.backendCount[id]--
		}
	}
}

// Flush publishes the counters accumulated since the last Flush.
func (w *Worker) Flush() {
	st := w.stats
	for i, n := range w.reasons {
		if n != 0 {
			st.Reasons[i].Add(n)
			w.reasons[i] = 0
		}
	}
	for _, id := range w.touched {
		st.Backends[id].Add(uint64(w.backendCount[id]))
		w.backendCount[id] = 0
	}
	w.touched = w.touched[:0]
	if w.hits != 0 {
		st.ConntrackHits.Add(w.hits)
		w.hits = 0
	}
	if w.misses != 0 {
		st.ConntrackMiss.Add(w.misses)
		w.misses = 0
	}
	if w.quicRouted|w.quicFallback != 0 {
		st.QUICRouted.Add(w.quicRouted)
		st.QUICFallback.Add(w.quicFallback)
		w.quicRouted, w.quicFallback = 0, 0
	}
	if w.fastHits != 0 {
		st.FastPath.Add(w.fastHits)
		w.fastHits = 0
	}
	if w.fragHits|w.fragMisses != 0 {
		st.FragHits.Add(w.fragHits)
		st.FragMisses.Add(w.fragMisses)
		w.fragHits, w.fragMisses = 0, 0
	}
	st.ConntrackLive.Store(w.ct.live)
	st.ConntrackEvicted.Store(w.ct.evicted)
	st.ConntrackRefused.Store(w.ct.refused)
	st.Batches.Add(1)
}

func (w *Worker) countBackend(id uint32) {
	if w.backendCount[id] == 0 {
		w.touched = append(w.touched, uint16(id))
	}
	w.backendCount[id]++
}
