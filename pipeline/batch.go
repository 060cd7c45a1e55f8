package pipeline

// A worker sees a batch of frames at once, and that is where a poll-mode
// forwarder can beat one that sees one packet at a time: the connection
// table lookups of a batch can miss the caches together instead of one
// after another. ProcessBatch goes over a batch twice: first it touches
// the connection-table bucket of every frame that has the fast path's
// shape — an early, independent load, Go's stand-in for a prefetch — then
// it processes each frame with Process, whose own loads of those buckets
// now hit the cache. Verdicts and bytes are Process's
// (TestBatchMatchesProcess). The live loop (Loop.Poll) does not stage yet:
// the gain has still to be measured on a quiet machine (railbench pipeline
// --flows-sweep … --staged=true|false).

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

// touch loads the first word of the IPv4 connection-table bucket of p's
// flow when p looks like the fast path's frame (GRE over IPv4 to us,
// inner IPv4 TCP or UDP) and does nothing otherwise. It changes nothing:
// the load only brings the bucket's cache line in; the sum it keeps makes
// sure the compiler cannot drop the load.
func (w *Worker) touch(p *Packet) {
	buf, off, n := p.Buf, p.Off, p.Len
	if n < fastLen || uint(off) > uint(len(buf)) || uint(n) > uint(len(buf)-off) {
		return
	}
	s := w.snap
	f := (*[fastLen]byte)(buf[off:])
	proto := f[47]
	if be.Uint16(f[12:]) != 0x0800 || f[23] != 47 || be.Uint32(f[30:]) != s.local || (proto != 6 && proto != 17) {
		return
	}
	ports := be.Uint32(f[58:])
	src := be.Uint32(f[50:])
	dstLo := v4Mapped | uint64(be.Uint32(f[54:]))
	rest := uint64(ports)<<8 | uint64(proto)
	h := flowHashWords(0, v4Mapped|uint64(src), 0, dstLo, rest, s.k0, s.k1)
	w.touched64 += uint64(w.ct.buckets[uint32(h)&w.ct.bucketMask][0].deadline)
}
