package pipeline

import "github.com/rail-lb/rail/pipeline/header"

// A worker sees a batch of frames at once, and that is where a poll-mode
// forwarder can beat one that sees one packet at a time: the connection
// table lookups of a batch can miss the caches together instead of one
// after another. ProcessBatch (and the live loop, Loop.Poll, the same
// way) first finds the connection-table bucket of every frame that has a
// fast path's shape — parsing and hashing, no table loads — and then
// processes the frames with Process, fetching the buckets ahead of it
// (fetchFirst, fetchAhead): on amd64 a software prefetch of every cache
// line of the bucket of the frame fetchDistance frames on, issued a few
// frames at a time (prefetch_amd64.go), elsewhere plain loads of the
// whole batch's buckets in one tight loop before the first frame
// (prefetch_other.go). Process's own loads of those buckets then hit the
// cache. Verdicts and bytes are Process's (TestBatchMatchesProcess).
//
// Staging is not free (each frame is parsed and hashed once more): with a
// table the caches hold it costs more than it saves, so the live loop
// stages only once its table holds stageMin live entries (staging).
// Measured on the NIC layout (taskset -c 1 railbench pipeline --packets
// 4000000 --flows-sweep 1000,2000,4000,1M,4M --staged=true|false; more in
// bench/README.md), base pages, staged and not, ns/packet: 29.5 and 28.2
// at 1,000 flows, 31.3 and 31.3 at 2,000, 31.6 and 33.4 at 4,000, 55.1
// and 149.1 at 1M, 67.1 and 189.7 at 4M.

// Batch is how many descriptors a worker takes from its rx ring at a time.
const Batch = 64

// stageMin is the number of live connection entries from which the live
// loop stages its batches: just past where staging starts to pay (above).
const stageMin = 1 << 12

// staging reports whether the live loop should stage: the table has
// outgrown the caches.
func (w *Worker) staging() bool { return w.ct.live >= stageMin }

// ProcessBatch processes ps[i] into rs[i] for every i (rs must be at least
// as long as ps), exactly as calling Process on each in order would, in
// chunks of Batch frames: each chunk's buckets found (stage), then
// fetched (fetchFirst, fetchAhead) as the frames are processed.
func (w *Worker) ProcessBatch(ps []Packet, rs []Result) {
	rs = rs[:len(ps)]
	for len(ps) > 0 {
		m := min(len(ps), Batch)
		for i := range m {
			w.stage(i, &ps[i])
		}
		w.fetchFirst(m)
		for i := range m {
			if i%fetchGroup == 0 {
				w.fetchAhead(i, m)
			}
			rs[i] = w.Process(&ps[i])
		}
		ps, rs = ps[m:], rs[m:]
	}
}

// Staged buckets: an IPv4 bucket's index, an IPv6 one's with stagedV6
// set, or stagedNone.
const (
	stagedV6   = 1 << 31
	stagedNone = ^uint32(0)
)

// stage records, as the i-th of a chunk, the connection-table bucket of
// p's flow when p has a fast path's shape (GRE over IPv4 to us around IPv4
// or IPv6 TCP or UDP, or plain IPv4 TCP or UDP), and none otherwise. It
// parses and hashes but loads nothing from the table.
func (w *Worker) stage(i int, p *Packet) {
	w.staged[i%Batch] = w.bucketOf(p)
}

func (w *Worker) bucketOf(p *Packet) uint32 {
	buf, off, n := p.Buf, p.Off, p.Len
	if n < plainLen || uint(off) > uint(len(buf)) || uint(n) > uint(len(buf)-off) {
		return stagedNone
	}
	s := w.snap
	f := (*[plainLen]byte)(buf[off:])
	if be.Uint16(f[12:]) != header.EtherTypeIPv4 {
		return stagedNone
	}
	var src, dst, ports uint32
	proto := f[23]
	if proto == header.ProtoGRE {
		if n < fastLen || be.Uint32(f[30:]) != s.local {
			return stagedNone
		}
		g := (*[fastLen]byte)(buf[off:])
		if be.Uint16(g[36:]) == header.EtherTypeIPv6 {
			return w.bucketOf6(p)
		}
		proto, src, dst, ports = g[47], be.Uint32(g[50:]), be.Uint32(g[54:]), be.Uint32(g[58:])
	} else {
		src, dst, ports = be.Uint32(f[26:]), be.Uint32(f[30:]), be.Uint32(f[34:])
	}
	if proto != header.ProtoTCP && proto != header.ProtoUDP {
		return stagedNone
	}
	rest := uint64(ports)<<8 | uint64(proto)
	h := flowHashWords(0, v4Mapped|uint64(src), 0, v4Mapped|uint64(dst), rest, s.k0, s.k1)
	return uint32(h) & w.ct.bucketMask
}

// bucketOf6 is bucketOf for GRE over IPv4 around IPv6: the IPv6 table's bucket.
func (w *Worker) bucketOf6(p *Packet) uint32 {
	if p.Len < fast6Len {
		return stagedNone
	}
	s := w.snap
	g := (*[fast6Len]byte)(p.Buf[p.Off:])
	const in = outerLen
	rest := uint64(be.Uint32(g[in+header.IPv6Len:]))<<8 | uint64(g[in+6])
	h := flowHashWords(be.Uint64(g[in+8:]), be.Uint64(g[in+16:]), be.Uint64(g[in+24:]), be.Uint64(g[in+32:]), rest, s.k0, s.k1)
	return uint32(h)&w.ct.mask6 | stagedV6
}
