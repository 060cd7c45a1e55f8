package pipeline

import "github.com/rail-lb/rail/pipeline/header"

// A worker sees a batch of frames at once, and that is where a poll-mode
// forwarder can beat one that sees one packet at a time: the connection
// table lookups of a batch can miss the caches together instead of one
// after another. ProcessBatch goes over a batch twice: first it touches
// the connection-table bucket of every frame that has the fast path's
// shape — an early, independent load, Go's stand-in for a prefetch — then
// it processes each frame with Process, whose own loads of those buckets
// now hit the cache. Verdicts and bytes are Process's
// (TestBatchMatchesProcess).
//
// The touch is not free (it parses and hashes each frame once more): with
// a table the caches hold it costs more than it saves. Measured on the
// NIC layout (railbench pipeline --flows-sweep 1k,10k,100k,1M,4M
// --staged=true|false), staged and not, ns/packet: 47 and 31 at 1,000
// flows, 105 and 209 at 100,000, 157 and 289 at 1M, 191 and 366 at 4M. So
// the live loop (Loop.Poll) stages only once its table holds stageMin
// live entries (staging).

// Batch is how many descriptors a worker takes from its rx ring at a time.
const Batch = 64

// stageMin is the number of live connection entries (1 MiB of IPv4 ones)
// from which the live loop stages its batches: between the 10,000 flows
// at which staging still costs and the 100,000 at which it halves the
// time per packet.
const stageMin = 1 << 15

// staging reports whether the live loop should stage: the table has
// outgrown the caches.
func (w *Worker) staging() bool { return w.ct.live >= stageMin }

// ProcessBatch processes ps[i] into rs[i] for every i (rs must be at least
// as long as ps), exactly as calling Process on each in order would.
func (w *Worker) ProcessBatch(ps []Packet, rs []Result) {
	rs = rs[:len(ps)]
	for i := range ps {
		w.touch(&ps[i])
	}
	for i := range ps {
		rs[i] = w.Process(&ps[i])
	}
}

// touch loads the first word of the connection-table bucket of p's flow
// when p has a fast path's shape (GRE over IPv4 to us around IPv4 or IPv6
// TCP or UDP, or plain IPv4 TCP or UDP) and does nothing otherwise. It
// changes nothing: the load only brings the bucket's cache line in; the
// sum it keeps makes sure the compiler cannot drop the load.
func (w *Worker) touch(p *Packet) {
	buf, off, n := p.Buf, p.Off, p.Len
	if n < plainLen || uint(off) > uint(len(buf)) || uint(n) > uint(len(buf)-off) {
		return
	}
	s := w.snap
	f := (*[plainLen]byte)(buf[off:])
	if be.Uint16(f[12:]) != header.EtherTypeIPv4 {
		return
	}
	var src, dst, ports uint32
	proto := f[23]
	if proto == header.ProtoGRE {
		if n < fastLen || be.Uint32(f[30:]) != s.local {
			return
		}
		g := (*[fastLen]byte)(buf[off:])
		if be.Uint16(g[36:]) == header.EtherTypeIPv6 {
			w.touch6(p)
			return
		}
		proto, src, dst, ports = g[47], be.Uint32(g[50:]), be.Uint32(g[54:]), be.Uint32(g[58:])
	} else {
		src, dst, ports = be.Uint32(f[26:]), be.Uint32(f[30:]), be.Uint32(f[34:])
	}
	if proto != header.ProtoTCP && proto != header.ProtoUDP {
		return
	}
	rest := uint64(ports)<<8 | uint64(proto)
	h := flowHashWords(0, v4Mapped|uint64(src), 0, v4Mapped|uint64(dst), rest, s.k0, s.k1)
	w.touched64 += uint64(w.ct.buckets[uint32(h)&w.ct.bucketMask][0].deadline)
}

// touch6 is touch for GRE over IPv4 around IPv6: the IPv6 table's bucket.
func (w *Worker) touch6(p *Packet) {
	if p.Len < fast6Len {
		return
	}
	s := w.snap
	g := (*[fast6Len]byte)(p.Buf[p.Off:])
	const in = outerLen
	rest := uint64(be.Uint32(g[in+header.IPv6Len:]))<<8 | uint64(g[in+6])
	h := flowHashWords(be.Uint64(g[in+8:]), be.Uint64(g[in+16:]), be.Uint64(g[in+24:]), be.Uint64(g[in+32:]), rest, s.k0, s.k1)
	w.touched64 += uint64(w.ct.buckets6[uint32(h)&w.ct.mask6][0].deadline)
}
