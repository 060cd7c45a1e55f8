package pipeline

import (
	"encoding/binary"

	"github.com/rail-lb/rail/maglev"
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
)

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

func (w *Worker) process(p *Packet) Result {
	s := w.snap
	if p.Off < 0 || p.Len < 0 || p.Off+p.Len > len(p.Buf) {
		return Result{Verdict: Drop, Reason: Malformed}
	}
	b := p.Buf[p.Off : p.Off+p.Len]
	if len(b) < header.EthernetLen || binary.BigEndian.Uint16(b[12:]) != header.EtherTypeIPv4 {
		return Result{Verdict: Pass, Reason: NotIP}
	}
	if len(b) < header.EthernetLen+header.IPv4MinLen {
		return Result{Verdict: Pass, Reason: NotOurs}
	}
	ip := header.IPv4(b[header.EthernetLen:])
	dst := ip.Dst()

	var inner header.IPv4
	gre := false
	if dst == s.local && ip.Protocol() == header.ProtoGRE {
		hl, tl := ip.HeaderLen(), ip.TotalLen()
		if ip.Version() != 4 || hl < header.IPv4MinLen || hl+header.GREMinLen > tl || tl > len(ip) {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		if ip.IsFragment() {
			return Result{Verdict: Drop, Reason: Fragment}
		}
		g := header.GRE(ip[hl:tl])
		flags := g.Flags()
		if flags&^header.GREFlagsSupported != 0 {
			return Result{Verdict: Drop, Reason: Unsupported}
		}
		gl := header.GRELen(flags)
		if gl > len(g) {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		if g.Protocol() != header.EtherTypeIPv4 {
			return Result{Verdict: Drop, Reason: Unsupported}
		}
		inner = header.IPv4(g[gl:])
		gre = true
	} else if s.isVIP(dst) {
		inner = ip
	} else {
		return Result{Verdict: Pass, Reason: NotOurs}
	}

	if !inner.Valid() {
		return Result{Verdict: Drop, Reason: Malformed}
	}
	idst := inner.Dst()
	if gre && !s.isVIP(idst) {
		return Result{Verdict: Pass, Reason: NoService}
	}
	if inner.IsFragment() {
		return Result{Verdict: Drop, Reason: Fragment}
	}
	proto := inner.Protocol()
	hl, tl := inner.HeaderLen(), inner.TotalLen()
	var ports uint32
	if proto == header.ProtoTCP || proto == header.ProtoUDP {
		if hl+header.PortsLen > tl {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		ports = binary.BigEndian.Uint32(inner[hl:])
	}
	si, ok := s.lookupService(idst, uint16(ports), proto)
	if !ok {
		return Result{Verdict: Pass, Reason: NoService}
	}
	svc := &s.services[si]

	key := flowKey{src: inner.Src(), dst: idst, ports: ports, proto: proto}
	h := flowHash(key.src, key.dst, key.ports, key.proto, s.k0, s.k1)
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
	if bi == maglev.NoBackend {
		return Result{Verdict: Drop, Reason: NoBackend}
	}
	w.ct.insert(bucket, key, bi, svc.backends[bi].addr, w.now)

rewrite:
	be := &svc.backends[bi]
	// The inner packet stays where it is; the new headers end right before it.
	innerOff := p.Off + len(b) - len(inner)
	off := innerOff - outerLen
	if off < 0 {
		return Result{Verdict: Drop, Reason: NoHeadroom}
	}
	var ingressDst, ingressSrc header.MAC
	copy(ingressDst[:], b[0:6])
	copy(ingressSrc[:], b[6:12])
	id := inner.ID()
	df := inner.FlagsFrag() & header.IPv4FlagDF

	out := p.Buf[off : innerOff+tl]
	eth := out[:header.EthernetLen]
	if s.nextHop == NextHopMAC {
		copy(eth[0:6], s.hopMAC[:])
	} else {
		copy(eth[0:6], ingressSrc[:])
	}
	copy(eth[6:12], ingressDst[:])
	eth[12], eth[13] = 0x08, 0x00

	oip := out[header.EthernetLen : header.EthernetLen+header.IPv4MinLen]
	copy(oip, be.hdr[:])
	total := uint32(EncapLen + tl)
	binary.BigEndian.PutUint16(oip[2:], uint16(total))
	binary.BigEndian.PutUint16(oip[4:], id)
	binary.BigEndian.PutUint16(oip[6:], df)
	sum := be.sum + total + uint32(id) + uint32(df)
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	binary.BigEndian.PutUint16(oip[10:], ^uint16(sum))

	g := out[header.EthernetLen+header.IPv4MinLen : outerLen]
	g[0], g[1], g[2], g[3] = 0, 0, 0x08, 0x00

	p.Off, p.Len = off, len(out)
	w.countBackend(be.id)
	return Result{Verdict: Tx, Service: si, Backend: bi}
}
