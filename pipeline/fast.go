package pipeline

import "github.com/rail-lb/rail/pipeline/header"

// The fast paths handle the frames a node sees most, for a flow the
// connection table already has as established, to a backend the path can
// write for without any of the general path's choices:
//
//   - GRE over IPv4 around an IPv4 TCP or UDP packet (what every router
//     sends), to an IPv4 backend: the outer headers overlay the ingress
//     ones exactly;
//   - GRE over IPv4 around an IPv6 TCP or UDP packet, to an IPv6 or an
//     IPv4 backend;
//   - a plain IPv4 TCP or UDP packet to a VIP (clients on the node's own
//     network, every lab), to an IPv4 backend: the outer headers go into
//     the headroom.
//
// Each reads fixed offsets of one array and declines (false) before
// touching anything when the frame has any other shape — IP options,
// fragments, GRE flags, IPv6 extension headers, a SYN, FIN or RST, a flow
// the table does not have as established, a backend that is unhealthy,
// of the other family or behind a service with remote backends, second chance, per-backend next hops, a
// packet over the MTU. processGeneral, which decides the same way
// (TestFastPathMatchesGeneral), then does the work.

// Frame prefixes the fast paths read: Ethernet, the headers, the ports.
const (
	fastLen   = outerLen + header.IPv4MinLen + header.PortsLen // GRE-in IPv4
	fast6Len  = outerLen + header.IPv6Len + header.PortsLen    // GRE-in IPv6
	plainLen  = ethIPv4Len + header.PortsLen                   // plain IPv4
	fragBits  = header.IPv4FlagMF | header.IPv4FragOffset
	tcpFlagAt = 13 // the TCP flags' offset in the TCP header
)

// Process decides the verdict for one frame and, for Tx, rewrites it into
// the egress frame of docs/reference.md: Ethernet | outer IPv4 or IPv6 to
// the backend | GRE | the inner packet byte for byte. It follows
// docs/verdicts.md step by step; the XDP steering program mirrors the
// steps that end in pass. It tells a frame's form from its first words
// and takes that form's fast path; anything a fast path declines goes the
// general way (processGeneral).
//
// Process allocates nothing, takes no locks and makes no calls through
// interfaces; it is the one function replay, the live worker and the
// benchmarks share. The GRE-in IPv4 path, the one most frames take, is
// written out here rather than called.
func (w *Worker) Process(p *Packet) Result {
	buf, off, n := p.Buf, p.Off, p.Len
	if n < plainLen || uint(off) > uint(len(buf)) || uint(n) > uint(len(buf)-off) {
		goto general
	}
	{
		s := w.snap
		f := (*[plainLen]byte)(buf[off:])
		// w0 = EtherType, version/IHL, TOS, total length, ID (bytes 12–19);
		// w1 = flags/fragment, TTL, protocol, checksum, 2 bytes (20–27).
		w0, w1 := be.Uint64(f[12:]), be.Uint64(f[20:])
		if w0>>40 != 0x08_00_45 || (w1>>48)&fragBits != 0 {
			goto general
		}
		otl := int(uint16(w0 >> 16))
		if uint8(w1>>32) != header.ProtoGRE {
			if r, ok := w.fastPlain4(p, s, otl); ok {
				w.reasons[ReasonNone]++
				return r
			}
			goto general
		}
		if n < fastLen || be.Uint32(f[30:]) != s.local || header.EthernetLen+otl > n {
			goto general
		}
		g := (*[fastLen]byte)(buf[off:])
		// w3 = GRE flags and protocol, inner version/IHL, TOS, length (34–41);
		// w4 = inner ID, flags/fragment, TTL, protocol, checksum (42–49).
		w3, w4 := be.Uint64(g[34:]), be.Uint64(g[42:])
		// GRE over IPv4 around IPv4, to an IPv4 backend: the egress headers
		// have the ingress ones' size and replace them in place.
		itl := int(uint16(w3))
		proto := uint8(w4 >> 16)
		if w3>>24 != 0x00_00_08_00_45 || (w4>>32)&fragBits != 0 ||
			(proto != header.ProtoTCP && proto != header.ProtoUDP) ||
			otl != EncapLen+itl || itl < header.IPv4MinLen+header.PortsLen ||
			(s.mtu != 0 && otl > s.mtu) {
			if w3>>32 == header.EtherTypeIPv6 {
				if r, ok := w.fastGRE6(p, s, otl); ok {
					w.reasons[ReasonNone]++
					return r
				}
			}
			goto general
		}
		if proto == header.ProtoTCP && itl >= header.IPv4MinLen+14 &&
			buf[off+outerLen+header.IPv4MinLen+tcpFlagAt]&(tcpFIN|tcpRST|tcpSYN) != 0 {
			goto general // a state change
		}
		// established4, written out: a call here costs this path a tenth.
		src, dst, ports := be.Uint32(g[50:]), be.Uint32(g[54:]), be.Uint32(g[58:])
		sl := s.exactService4(dst, portProto(uint16(ports), proto))
		if sl == nil {
			goto general
		}
		k := flowKey4{addrs: uint64(src)<<32 | uint64(dst), rest: uint64(ports)<<8 | uint64(proto)}
		e := w.ct.probe4(flowHashWords(0, v4Mapped|uint64(src), 0, v4Mapped|uint64(dst), k.rest, s.k0, s.k1), k, w.now)
		bk, bi := w.fastBackend(sl.svc, e, s)
		if bk == nil || bk.v6 {
			goto general
		}
		w.refresh(e, proto)
		w.hits++
		w.fastHits++

		// Committed: from here on the packet is forwarded.
		w.fastEthernet((*[header.EthernetLen]byte)(g[:]), s)
		*(*[16]byte)(g[14:30]) = *(*[16]byte)(bk.hdr[0:16])
		*(*[8]byte)(g[30:38]) = *(*[8]byte)(bk.hdr[16:24])
		id, df := be.Uint16(g[42:]), be.Uint16(g[44:])&header.IPv4FlagDF
		be.PutUint16(g[16:], uint16(otl))
		be.PutUint16(g[18:], id)
		be.PutUint16(g[20:], df)
		be.PutUint16(g[24:], bk.outerSum(uint16(otl), id, df))
		be.PutUint16(g[36:], header.EtherTypeIPv4)
		p.Len = header.EthernetLen + otl
		w.countBackend(bk.id)
		w.reasons[ReasonNone]++
		return Result{Verdict: Tx, Service: sl.idx, Backend: bi}
	}
general:
	return w.general(p)
}

// general is what Process does with a frame no fast path takes (tests
// call it to compare the paths).
func (w *Worker) general(p *Packet) Result {
	r := w.process(p)
	w.reasons[r.Reason]++
	return r
}

// fastPlain4 is a plain IPv4 packet to a VIP, to an IPv4 backend: the
// outer IPv4 and GRE headers go into the headroom, the Ethernet header
// moves in front of them.
func (w *Worker) fastPlain4(p *Packet, s *Snapshot, tl int) (Result, bool) {
	buf, off, n := p.Buf, p.Off, p.Len
	f := (*[plainLen]byte)(buf[off:])
	proto := f[23]
	start := off - EncapLen
	if (proto != header.ProtoTCP && proto != header.ProtoUDP) ||
		tl < header.IPv4MinLen+header.PortsLen || header.EthernetLen+tl > n || start < 0 ||
		(s.mtu != 0 && EncapLen+tl > s.mtu) {
		return Result{}, false
	}
	if proto == header.ProtoTCP && tl >= header.IPv4MinLen+14 &&
		buf[off+ethIPv4Len+tcpFlagAt]&(tcpFIN|tcpRST|tcpSYN) != 0 {
		return Result{}, false
	}
	sl, bk, bi := w.established4(s, be.Uint32(f[26:]), be.Uint32(f[30:]), be.Uint32(f[34:]), proto)
	if bk == nil {
		return Result{}, false
	}

	// Committed.
	id, df := be.Uint16(f[18:]), be.Uint16(f[20:])&header.IPv4FlagDF
	o := (*[outerLen]byte)(buf[start:])
	*(*[12]byte)(o[0:12]) = *(*[12]byte)(f[0:12]) // the ingress MACs, before the outer header overwrites them
	w.fastEthernet((*[header.EthernetLen]byte)(buf[start:]), s)
	be.PutUint16(o[12:], header.EtherTypeIPv4)
	bk.putOuter4((*[EncapLen]byte)(o[header.EthernetLen:]), uint16(EncapLen+tl), id, df, header.EtherTypeIPv4)
	p.Off, p.Len = start, outerLen+tl
	w.countBackend(bk.id)
	return Result{Verdict: Tx, Service: sl.idx, Backend: bi}, true
}

// fastGRE6 is GRE over IPv4 around IPv6, to an IPv6 backend (the outer
// IPv6 header is 20 bytes longer: the frame grows into the headroom) or
// an IPv4 one (the outer headers replace the ingress ones in place).
func (w *Worker) fastGRE6(p *Packet, s *Snapshot, otl int) (Result, bool) {
	buf, off, n := p.Buf, p.Off, p.Len
	if n < fast6Len {
		return Result{}, false
	}
	f := (*[fast6Len]byte)(buf[off:])
	const in = outerLen // the inner IPv6 header
	pl := int(be.Uint16(f[in+4:]))
	proto := f[in+6]
	innerLen := header.IPv6Len + pl
	if f[in]>>4 != 6 || (proto != header.ProtoTCP && proto != header.ProtoUDP) ||
		pl < header.PortsLen || EncapLen+innerLen > otl {
		return Result{}, false
	}
	if proto == header.ProtoTCP && pl >= 14 && buf[off+in+header.IPv6Len+tcpFlagAt]&(tcpFIN|tcpRST|tcpSYN) != 0 {
		return Result{}, false
	}
	src := addr128{be.Uint64(f[in+8:]), be.Uint64(f[in+16:])}
	dst := addr128{be.Uint64(f[in+24:]), be.Uint64(f[in+32:])}
	ports := be.Uint32(f[in+header.IPv6Len:])
	pp := portProto(uint16(ports), proto)
	sl := &s.svcSlots[slotHash(dst, pp)&s.svcMask]
	if sl.pp != pp || sl.vip != dst || dst.isMapped() {
		return Result{}, false
	}
	rest := uint64(ports)<<8 | uint64(proto)
	h := flowHashWords(src.hi, src.lo, dst.hi, dst.lo, rest, s.k0, s.k1)
	b := &w.ct.buckets6[uint32(h)&w.ct.mask6]
	var e *ctMeta
	for i := range b {
		if c := &b[i]; c.key.rest == rest && c.key.src == src && c.key.dst == dst && c.deadline >= w.now {
			e = &c.ctMeta
			break
		}
	}
	bk, bi := w.fastBackend(sl.svc, e, s)
	if bk == nil {
		return Result{}, false
	}
	hdrLen, start := EncapLen, off
	if bk.v6 {
		hdrLen, start = EncapLen6, off-(EncapLen6-EncapLen)
	}
	if start < 0 || (s.mtu != 0 && hdrLen+innerLen > s.mtu) {
		return Result{}, false
	}

	// Committed.
	w.refresh(e, proto)
	w.hits++
	w.fastHits++
	o := buf[start:]
	*(*[12]byte)(o[0:12]) = *(*[12]byte)(f[0:12]) // the ingress MACs (a no-op in place)
	w.fastEthernet((*[header.EthernetLen]byte)(o), s)
	if bk.v6 {
		be.PutUint16(o[12:], header.EtherTypeIPv6)
		bk.putOuter6((*[EncapLen6]byte)(o[header.EthernetLen:]), uint16(header.GREMinLen+innerLen), uint32(h), header.EtherTypeIPv6)
	} else {
		// An IPv6 packet is never fragmented on the way: DF.
		bk.putOuter4((*[EncapLen]byte)(o[header.EthernetLen:]), uint16(EncapLen+innerLen), 0, header.IPv4FlagDF, header.EtherTypeIPv6)
	}
	p.Off, p.Len = start, header.EthernetLen+hdrLen+innerLen
	w.countBackend(bk.id)
	return Result{Verdict: Tx, Service: sl.idx, Backend: bi}, true
}

// established4 finds the service of an IPv4 flow to dst by its exact
// slot, its established connection entry and that entry's backend, and
// pushes the entry's deadline; nil when any of them is missing or not
// fit for a fast path. It is small enough to be inlined into Process.
func (w *Worker) established4(s *Snapshot, src, dst, ports uint32, proto uint8) (*svcSlot, *backend, uint16) {
	sl := s.exactService4(dst, portProto(uint16(ports), proto))
	if sl == nil {
		return nil, nil, 0
	}
	k := flowKey4{addrs: uint64(src)<<32 | uint64(dst), rest: uint64(ports)<<8 | uint64(proto)}
	e := w.ct.probe4(flowHashWords(0, v4Mapped|uint64(src), 0, v4Mapped|uint64(dst), k.rest, s.k0, s.k1), k, w.now)
	bk, bi := w.fastBackend(sl.svc, e, s)
	if bk == nil || bk.v6 {
		return nil, nil, 0
	}
	w.refresh(e, proto)
	w.hits++
	w.fastHits++
	return sl, bk, bi
}

// exactService4 is the service of IPv4 address dst with port and
// protocol pp (portProto) in its own slot, without the wildcard lookups
// of lookupService; nil if that slot holds another.
func (s *Snapshot) exactService4(dst, pp uint32) *svcSlot {
	lo := v4Mapped | uint64(dst)
	sl := &s.svcSlots[slotHash(addr128{0, lo}, pp)&s.svcMask]
	if sl.pp != pp || sl.vip.lo != lo || sl.vip.hi != 0 {
		return nil
	}
	return sl
}

// fastBackend is the backend of an established entry e of svc, when a
// fast path can forward to it: healthy, a service with no remote backend
// (whose loop rule the general path applies) and no second chance, and a
// next hop that does not depend on the backend. Else nil.
func (w *Worker) fastBackend(svc *service, e *ctMeta, s *Snapshot) (*backend, uint16) {
	if e == nil || e.state != ctEstablished || int(e.backend) >= len(svc.backends) {
		return nil, 0
	}
	bk := &svc.backends[e.backend]
	if bk.tag != e.tag || !bk.healthy || bk.remote || svc.remote || svc.prev != nil || s.nextHop == NextHopBackend {
		return nil, 0
	}
	return bk, e.backend
}

// refresh pushes an established entry's deadline, writing only when it
// moves (the cache line stays clean on most hits).
func (w *Worker) refresh(e *ctMeta, proto uint8) {
	to := w.ct.udpTimeout
	if proto == header.ProtoTCP {
		to = w.ct.tcpTimeout
	}
	if d := w.now + to; d != e.deadline {
		e.deadline = d
	}
}

// fastEthernet addresses an egress frame whose first 12 bytes still hold
// the ingress MACs: to the router it came from or the configured next
// hop, from the MAC it was sent to.
func (w *Worker) fastEthernet(f *[header.EthernetLen]byte, s *Snapshot) {
	macs := *(*[12]byte)(f[:12])
	if s.nextHop == NextHopIngress {
		*(*[6]byte)(f[0:6]) = *(*[6]byte)(macs[6:12])
	} else {
		*(*[6]byte)(f[0:6]) = s.hopMAC
	}
	*(*[6]byte)(f[6:12]) = *(*[6]byte)(macs[0:6])
}

// putOuter4 writes bk's outer IPv4 and GRE headers with the packet's
// total length, the inner packet's ID and DF bit, and the GRE protocol.
func (bk *backend) putOuter4(oh *[EncapLen]byte, total, id, df, greProto uint16) {
	*oh = *(*[EncapLen]byte)(bk.hdr[:])
	be.PutUint16(oh[2:], total)
	be.PutUint16(oh[4:], id)
	be.PutUint16(oh[6:], df)
	be.PutUint16(oh[10:], bk.outerSum(total, id, df))
	be.PutUint16(oh[22:], greProto)
}

// outerSum finishes bk's outer IPv4 checksum: its precomputed sum plus
// the three fields that vary per packet, folded.
func (bk *backend) outerSum(total, id, df uint16) uint16 {
	sum := bk.sum + uint32(total) + uint32(id) + uint32(df)
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	return ^uint16(sum)
}

// putOuter6 writes bk's outer IPv6 and GRE headers with the payload
// length, a flow label from the flow's hash (it spreads flows over ECMP
// paths towards the backends) and the GRE protocol.
func (bk *backend) putOuter6(oh *[EncapLen6]byte, payloadLen uint16, hash uint32, greProto uint16) {
	// Fixed-size pieces: a 44-byte array copy is a memmove call.
	*(*[32]byte)(oh[0:32]) = *(*[32]byte)(bk.hdr[0:32])
	*(*[12]byte)(oh[32:44]) = *(*[12]byte)(bk.hdr[32:44])
	be.PutUint32(oh[0:], 6<<28|hash&0xfffff)
	be.PutUint16(oh[4:], payloadLen)
	be.PutUint16(oh[42:], greProto)
}
