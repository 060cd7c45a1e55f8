package pipeline

import (
	"encoding/binary"

	"github.com/rail-lb/rail/pipeline/header"
)

// Packet is one frame in a buffer with headroom in front of it: the frame
// occupies Buf[Off:Off+Len]. Process rewrites it in place and may move Off
// back to prepend headers, so Buf should have at least EncapLen bytes of
// headroom before Off.
type Packet struct {
	Buf []byte
	Off int
	Len int
}

const (
	// EncapLen is what encapsulation adds in front of the inner packet:
	// outer IPv4 (20 bytes) and GRE (4 bytes). The Ethernet header moves.
	EncapLen = header.IPv4MinLen + header.GREMinLen

	// outerLen is everything written in front of the inner packet.
	outerLen = header.EthernetLen + EncapLen

	ethIPv4Len = header.EthernetLen + header.IPv4MinLen
)

var be = binary.BigEndian

// Process decides the verdict for one frame and, for Tx, rewrites it into
// the egress frame of SPEC §1: Ethernet | outer IPv4 to the backend | GRE |
// the inner packet byte for byte. It follows docs/verdicts.md step by step;
// the XDP steering program mirrors the same steps.
//
// Process allocates nothing, takes no locks and makes no calls through
// interfaces; it is the one function replay, the live worker and the
// benchmarks share.
func (w *Worker) Process(p *Packet) Result {
	r := w.process(p)
	w.reasons[r.Reason]++
	return r
}

// fastLen is the prefix of a canonical GRE-in frame the fast path reads:
// Ethernet, a 20-byte outer IPv4, a 4-byte GRE, a 20-byte inner IPv4 and
// the ports.
const fastLen = outerLen + header.IPv4MinLen + header.PortsLen

func (w *Worker) process(p *Packet) Result {
	buf, off, n := p.Buf, p.Off, p.Len
	if uint(off) > uint(len(buf)) || uint(n) > uint(len(buf)-off) {
		return Result{Verdict: Drop, Reason: Malformed}
	}
	if n < fastLen {
		return w.processGeneral(p)
	}
	// Fast path: the frame every router sends — GRE to us with no options
	// or flags around an option-less, unfragmented inner TCP or UDP packet.
	// It reads fixed offsets of one array and so needs no bounds checks;
	// anything else takes processGeneral, which decides the same way
	// (TestFastPathMatchesGeneral).
	s := w.snap
	f := (*[fastLen]byte)(buf[off:])
	otl := int(be.Uint16(f[16:]))
	itl := int(be.Uint16(f[40:]))
	proto := f[47]
	if be.Uint32(f[12:])>>8 != 0x08_00_45 || f[23] != header.ProtoGRE ||
		be.Uint32(f[30:]) != s.local || be.Uint16(f[20:])&(header.IPv4FlagMF|header.IPv4FragOffset) != 0 ||
		be.Uint32(f[34:]) != header.EtherTypeIPv4 || f[38] != 0x45 ||
		be.Uint16(f[44:])&(header.IPv4FlagMF|header.IPv4FragOffset) != 0 ||
		(proto != header.ProtoTCP && proto != header.ProtoUDP) ||
		otl != EncapLen+itl || itl < header.IPv4MinLen+header.PortsLen || header.EthernetLen+otl > n {
		return w.processGeneral(p)
	}
	idst := be.Uint32(f[54:])
	ports := be.Uint32(f[58:])
	sl := s.lookupService(idst, uint16(ports), proto)
	if sl == nil {
		return Result{Verdict: Pass, Reason: NoService}
	}
	macs := *(*[12]byte)(f[:12])
	key := makeFlowKey(be.Uint32(f[50:]), idst, ports, proto)
	r := w.forward(s, sl, key, (*[outerLen]byte)(f[:outerLen]), &macs, uint32(otl), be.Uint16(f[42:]), be.Uint16(f[44:])&header.IPv4FlagDF)
	if r.Verdict == Tx {
		p.Len = header.EthernetLen + otl
	}
	return r
}

// processGeneral follows docs/verdicts.md step by step for any frame.
func (w *Worker) processGeneral(p *Packet) Result {
	s := w.snap
	buf, off := p.Buf, p.Off
	b := buf[off : off+p.Len]
	if len(b) < ethIPv4Len {
		if len(b) < header.EthernetLen || be.Uint16(b[12:]) != header.EtherTypeIPv4 {
			return Result{Verdict: Pass, Reason: NotIP}
		}
		return Result{Verdict: Pass, Reason: NotOurs}
	}
	hdr := (*[ethIPv4Len]byte)(b)
	if hdr[12] != 0x08 || hdr[13] != 0x00 {
		return Result{Verdict: Pass, Reason: NotIP}
	}
	dst := be.Uint32(hdr[30:])

	// innerAt is where the inner IPv4 packet starts in b, innerEnd where the
	// region that holds it ends.
	var innerAt, innerEnd int
	gre := false
	if dst == s.local && hdr[23] == header.ProtoGRE {
		hl := int(hdr[14]&0xf) << 2
		tl := int(be.Uint16(hdr[16:]))
		if hdr[14]>>4 != 4 || hl < header.IPv4MinLen || hl+header.GREMinLen > tl || tl > len(b)-header.EthernetLen {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		if be.Uint16(hdr[20:])&(header.IPv4FlagMF|header.IPv4FragOffset) != 0 {
			return Result{Verdict: Drop, Reason: Fragment}
		}
		g := header.EthernetLen + hl
		flags := be.Uint16(b[g:])
		if flags&^header.GREFlagsSupported != 0 {
			return Result{Verdict: Drop, Reason: Unsupported}
		}
		innerAt, innerEnd = g+header.GRELen(flags), header.EthernetLen+tl
		if innerAt > innerEnd {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		if be.Uint16(b[g+2:]) != header.EtherTypeIPv4 {
			return Result{Verdict: Drop, Reason: Unsupported}
		}
		gre = true
	} else if s.isVIP(dst) {
		innerAt, innerEnd = header.EthernetLen, len(b)
	} else {
		return Result{Verdict: Pass, Reason: NotOurs}
	}

	// The inner packet.
	region := b[innerAt:innerEnd]
	if len(region) < header.IPv4MinLen {
		return Result{Verdict: Drop, Reason: Malformed}
	}
	in := (*[header.IPv4MinLen]byte)(region)
	hl := int(in[0]&0xf) << 2
	tl := int(be.Uint16(in[2:]))
	if in[0]>>4 != 4 || hl < header.IPv4MinLen || hl > tl || tl > len(region) {
		return Result{Verdict: Drop, Reason: Malformed}
	}
	idst := be.Uint32(in[16:])
	fragWord := be.Uint16(in[6:])
	if fragWord&(header.IPv4FlagMF|header.IPv4FragOffset) != 0 {
		// A GRE-inner packet to something that is not a VIP is not ours,
		// fragment or not.
		if gre && !s.isVIP(idst) {
			return Result{Verdict: Pass, Reason: NoService}
		}
		return Result{Verdict: Drop, Reason: Fragment}
	}
	proto := in[9]
	var ports uint32
	if proto == header.ProtoTCP || proto == header.ProtoUDP {
		if hl+header.PortsLen > tl {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		ports = be.Uint32(region[hl:])
	}
	sl := s.lookupService(idst, uint16(ports), proto)
	if sl == nil {
		return Result{Verdict: Pass, Reason: NoService}
	}
	// The inner packet stays where it is; the new headers end right before it.
	start := off + innerAt - outerLen
	if start < 0 {
		return Result{Verdict: Drop, Reason: NoHeadroom}
	}
	macs := *(*[12]byte)(hdr[:12]) // ingress dst, src: the new headers may overwrite them
	out := buf[start : off+innerAt+tl]
	key := makeFlowKey(be.Uint32(in[12:]), idst, ports, proto)
	r := w.forward(s, sl, key, (*[outerLen]byte)(out), &macs, uint32(EncapLen+tl), be.Uint16(in[4:]), fragWord&header.IPv4FlagDF)
	if r.Verdict == Tx {
		p.Off, p.Len = start, len(out)
	}
	return r
}

// forward picks the backend for a flow of the service in slot sl — the connection
// table first, then the service's Maglev table — and writes the egress
// Ethernet, outer IPv4 and GRE headers into o. macs are the ingress
// frame's destination and source MACs; total, id and df go into the outer
// IPv4 header.
func (w *Worker) forward(s *Snapshot, sl *svcSlot, key flowKey, o *[outerLen]byte, macs *[12]byte, total uint32, id, df uint16) Result {
	svc := sl.svc
	h := flowHash(key, s.k0, s.k1)
	bucket, slot := w.ct.lookup(h, key, w.now)
	var bi uint16
	if slot >= 0 {
		e := &bucket[slot]
		bi = e.backend
		if int(bi) < len(svc.backends) && svc.backends[bi].addr == e.addr && svc.backends[bi].healthy {
			e.last = w.now
			w.hits++
			goto rewrite
		}
	}
	w.misses++
	bi = svc.table.Lookup(h)
	if int(bi) >= len(svc.backends) { // maglev.NoBackend included
		return Result{Verdict: Drop, Reason: NoBackend}
	}
	w.ct.insert(bucket, key, bi, svc.backends[bi].addr, w.now)

rewrite:
	bk := &svc.backends[bi]
	if s.nextHop == NextHopMAC {
		*(*[6]byte)(o[0:6]) = s.hopMAC
	} else {
		*(*[6]byte)(o[0:6]) = *(*[6]byte)(macs[6:12])
	}
	*(*[6]byte)(o[6:12]) = *(*[6]byte)(macs[0:6])
	o[12], o[13] = 0x08, 0x00
	*(*[EncapLen]byte)(o[header.EthernetLen:]) = bk.hdr
	be.PutUint16(o[16:], uint16(total))
	be.PutUint16(o[18:], id)
	be.PutUint16(o[20:], df)
	sum := bk.sum + total + uint32(id) + uint32(df)
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	be.PutUint16(o[24:], ^uint16(sum))
	w.countBackend(bk.id)
	return Result{Verdict: Tx, Service: sl.idx, Backend: bi}
}
