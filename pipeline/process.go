package pipeline

import (
	"encoding/binary"

	"github.com/rail-lb/rail/maglev"
	"github.com/rail-lb/rail/pipeline/header"
)

// Packet is one frame in a buffer with headroom in front of it: the frame
// occupies Buf[Off:Off+Len]. Process rewrites it in place and may move Off
// back to prepend headers, so Buf should have at least MaxHeadroom bytes of
// headroom before Off.
type Packet struct {
	Buf []byte
	Off int
	Len int
}

const (
	// EncapLen is what encapsulation towards an IPv4 backend puts in front
	// of the inner packet: outer IPv4 (20 bytes) and GRE (4 bytes).
	EncapLen = header.IPv4MinLen + header.GREMinLen
	// EncapLen6 is the same towards an IPv6 backend: outer IPv6 and GRE.
	EncapLen6 = header.IPv6Len + header.GREMinLen
	encapLen6 = EncapLen6

	// outerLen is everything written in front of the inner packet for an
	// IPv4 backend, Ethernet included.
	outerLen = header.EthernetLen + EncapLen

	ethIPv4Len = header.EthernetLen + header.IPv4MinLen
	ethIPv6Len = header.EthernetLen + header.IPv6Len

	// MaxHeadroom is the most Process writes in front of a frame: an ICMPv6
	// packet-too-big reply to a plain IPv6 packet (Ethernet, IPv6 and ICMPv6
	// headers in front of the quoted packet, whose Ethernet header was 14).
	MaxHeadroom = header.IPv6Len + header.ICMPHeaderLen

	// maxExtensions bounds every IPv6 extension-header walk.
	maxExtensions = 8
)

var be = binary.BigEndian

// Kinds of packet, for the steps after parsing.
const (
	kindPlain     uint8 = iota // TCP, UDP, other: by the 5-tuple
	kindFirstFrag              // the first fragment of a datagram: by the 5-tuple, remembered
	kindLaterFrag              // a later fragment: no ports; by the first one's choice
	kindEcho                   // echo request: by the 3-tuple, default service if none matches
	kindICMPError              // ICMP error: by the embedded flow, reversed
)

// flow is what parsing found out about a packet that is ours.
type flow struct {
	key      flowKey // the 5-tuple (ports 0 when there are none)
	port     uint16  // destination port for the service lookup
	proto    uint8   // protocol for the service lookup
	kind     uint8
	v6       bool   // the inner packet is IPv6
	tcpFlags uint8  // TCP flags, for the connection state
	df       uint16 // the inner IPv4 DF bit (IPv6: DF)
	id       uint16 // the inner IPv4 identification (copied to the outer header)
	fragID   uint32 // fragment identification (IPv4 or IPv6)
	inner    int    // the inner packet is buf[inner:end]
	l4       int    // the transport header is buf[l4:end]
	end      int
	hl       int    // the inner IPv4 header length (for ICMP quotes)
	hash     uint64 // the flow hash, once computed (IPv6 flow labels)
	viaGRE   bool   // it came in GRE; from is the tunnel's source
	from     addr128
	second   uint32 // the second hop (an IPv4 backend) for the GRE key; 0: none
}

// process is the general path: every frame the fast path declines.
func (w *Worker) process(p *Packet) Result {
	if uint(p.Off) > uint(len(p.Buf)) || uint(p.Len) > uint(len(p.Buf)-p.Off) {
		return Result{Verdict: Drop, Reason: Malformed}
	}
	return w.processGeneral(p)
}

// processGeneral follows docs/verdicts.md for any frame.
func (w *Worker) processGeneral(p *Packet) Result {
	var fl flow
	if r := w.parseGeneral(p, &fl); r.Verdict != Tx {
		return r
	}
	s := w.snap

	// The service, and for a later fragment the backend too: its first
	// fragment's choice, else its VIP's default service by the 3-tuple.
	vip := fl.key.dst
	var sl *svcSlot
	var bi uint16
	switch {
	case fl.kind == kindLaterFrag:
		sl, bi = w.laterFragment(s, &fl)
	default:
		if sl = s.lookupService(vip, fl.port, fl.proto); sl == nil && fl.kind == kindEcho {
			sl = s.defaultService(vip, fl.proto)
		}
	}
	if sl == nil {
		return Result{Verdict: Pass, Reason: NoService}
	}
	svc := sl.svc
	if svc.remote && fl.viaGRE && svc.fromNode(fl.from) {
		// Another Rail node forwarded it here, and this service forwards
		// too: sending it on could loop. It is dropped like any packet of
		// a service without a backend.
		return Result{Verdict: Drop, Reason: NoBackend}
	}

	// The backend: the connection table first, then Maglev.
	if fl.kind == kindLaterFrag {
		if bi == maglev.NoBackend {
			return Result{Verdict: Drop, Reason: NoBackend}
		}
	} else {
		h := flowHash(fl.key, s.k0, s.k1)
		fl.hash = h
		e, at := w.ct.lookup(h, &fl.key, w.now)
		if fl.proto == header.ProtoTCP && fl.tcpFlags&(tcpSYN|tcpACK) == tcpSYN {
			// A SYN opens a new connection, even on a tuple the table still
			// has (a client reusing its port while the old entry ages): it
			// goes by Maglev, so a drained or removed backend gets no new
			// connection. A retransmitted SYN lands where the first did
			// unless the backends changed in between.
			e = nil
		}
		if e != nil {
			if bi = svc.find(e.backend, e.tag); bi != maglev.NoBackend && svc.backends[bi].healthy {
				e.backend = bi
				if e.state == ctEstablished && fl.tcpFlags&(tcpFIN|tcpRST) == 0 {
					// Established and staying so: just push the deadline.
					if d := w.now + w.ct.timeout(ctEstablished, fl.proto); d != e.deadline {
						e.deadline = d
					}
				} else {
					w.ct.seen(e, fl.key.proto(), fl.tcpFlags, w.now)
				}
				w.hits++
				goto chosen
			}
		}
		if svc.quic != nil { // QUIC-LB: a new tuple goes by its connection ID first (quic.go)
			if bi = w.quicRoute(svc, p, &fl, at); bi != maglev.NoBackend {
				goto chosen
			}
		}
		if bi = w.miss(svc, at, fl.key, fl.tcpFlags, h); bi == maglev.NoBackend {
			return Result{Verdict: Drop, Reason: NoBackend}
		}
	chosen:
		if fl.kind == kindFirstFrag {
			w.firstFragment(sl, &fl, bi)
		}
		if svc.prev != nil {
			// Second chance: the pick before the transition, if another.
			if p := svc.prev.Lookup(h); int(p) < len(svc.backends) && p != bi {
				if pb := &svc.backends[p]; pb.healthy && !pb.v6 && !pb.remote && !svc.backends[bi].v6 {
					fl.second = pb.addr
				}
			}
		}
	}
	return w.encapsulate(p, s, sl, bi, &fl)
}

// encapsulate writes the egress headers for backend bi in front of the
// inner packet, which never moves, or answers a too-big packet.
func (w *Worker) encapsulate(p *Packet, s *Snapshot, sl *svcSlot, bi uint16, fl *flow) Result {
	buf, off := p.Buf, p.Off
	bk := &sl.svc.backends[bi]
	innerLen := fl.end - fl.inner
	key := 0 // the GRE key holding the second hop, when there is one
	if fl.second != 0 {
		key = header.GREKeyLen
	}
	if s.mtu != 0 && bk.hdrLen+key+innerLen > s.mtu {
		return w.tooBig(p, s, sl, bk.hdrLen+key, fl)
	}
	start := fl.inner - header.EthernetLen - bk.hdrLen - key
	if start < 0 {
		return Result{Verdict: Drop, Reason: NoHeadroom}
	}
	macs := *(*[12]byte)(buf[off:]) // the ingress MACs, before the new headers overwrite them
	o := buf[start:fl.end]
	eth := (*[header.EthernetLen]byte)(o)
	switch s.nextHop {
	case NextHopIngress:
		*(*[6]byte)(eth[0:6]) = *(*[6]byte)(macs[6:12])
	case NextHopMAC:
		*(*[6]byte)(eth[0:6]) = s.hopMAC
	default:
		if !bk.hasMAC {
			return Result{Verdict: Drop, Reason: NoNeighbor}
		}
		*(*[6]byte)(eth[0:6]) = bk.mac
	}
	*(*[6]byte)(eth[6:12]) = *(*[6]byte)(macs[0:6])
	greProto := uint16(header.EtherTypeIPv4)
	if fl.v6 {
		greProto = header.EtherTypeIPv6
	}
	if !bk.v6 {
		eth[12], eth[13] = 0x08, 0x00
		df := fl.df
		if fl.v6 {
			df = header.IPv4FlagDF // an IPv6 packet is never fragmented on the way
		}
		oh := (*[EncapLen]byte)(o[header.EthernetLen:])
		bk.putOuter4(oh, uint16(EncapLen+key+innerLen), fl.id, df, greProto)
		if key != 0 { // the GRE flags and key: outside the IPv4 checksum
			be.PutUint16(oh[20:], header.GREFlagKey)
			be.PutUint32(o[header.EthernetLen+EncapLen:], fl.second)
		}
	} else {
		eth[12], eth[13] = 0x86, 0xdd
		if fl.hash == 0 { // later fragments are not hashed on the way here
			fl.hash = flowHash(fl.key, s.k0, s.k1)
		}
		bk.putOuter6((*[EncapLen6]byte)(o[header.EthernetLen:]), uint16(header.GREMinLen+innerLen), uint32(fl.hash), greProto)
	}
	p.Off, p.Len = start, len(o)
	w.countBackend(bk.id)
	return Result{Verdict: Tx, Service: sl.idx, Backend: bi}
}

// find returns the index of the backend with address tag tag, looking at
// index hint first: a backend added or removed before it moves it in the
// list, and its flows must stay with it.
func (svc *service) find(hint uint16, tag uint32) uint16 {
	if int(hint) < len(svc.backends) && svc.backends[hint].tag == tag {
		return hint
	}
	for i := range svc.backends {
		if svc.backends[i].tag == tag {
			return uint16(i)
		}
	}
	return maglev.NoBackend
}

// miss handles a flow the connection table does not know (or knows with a
// backend that is gone or unhealthy): Maglev picks, the table records.
func (w *Worker) miss(svc *service, at ctSlot, key flowKey, tcpFlags uint8, h uint64) uint16 {
	w.misses++
	bi := svc.table.Lookup(h)
	if int(bi) >= len(svc.backends) { // maglev.NoBackend included
		return maglev.NoBackend
	}
	w.ct.insert(at, &key, tcpFlags, bi, svc.backends[bi].tag, w.now)
	return bi
}

func (fl *flow) fragKey() fragKey {
	return fragKey{src: fl.key.src, dst: fl.key.dst, idProto: uint64(fl.fragID)<<8 | uint64(fl.proto)}
}

func fragHash(k fragKey, s *Snapshot) uint64 {
	return flowHash(flowKey{src: k.src, dst: k.dst, rest: k.idProto}, s.k0, s.k1)
}

// firstFragment remembers the backend the first fragment of a datagram went to.
func (w *Worker) firstFragment(sl *svcSlot, fl *flow, bi uint16) {
	k := fl.fragKey()
	e := w.ct.frags.slot(fragHash(k, w.snap))
	*e = fragEntry{key: k, tag: sl.svc.backends[bi].tag, last: w.now, service: sl.idx, backend: bi}
}

// laterFragment picks the service and backend of a fragment without
// ports: its first fragment's, when that came first and its backend is
// still usable; else the VIP's default service and the choice by (source,
// destination, protocol). The service is nil when the destination has
// none.
func (w *Worker) laterFragment(s *Snapshot, fl *flow) (*svcSlot, uint16) {
	k := fl.fragKey()
	e := w.ct.frags.slot(fragHash(k, s))
	if e.key == k && e.last != 0 && w.now-e.last <= fragTimeout && int(e.service) < len(s.services) {
		svc := &s.services[e.service]
		if int(e.backend) < len(svc.backends) && svc.backends[e.backend].tag == e.tag && svc.backends[e.backend].healthy {
			w.fragHits++
			return svc.slot, e.backend
		}
	}
	w.fragMisses++
	sl := s.defaultService(fl.key.dst, fl.proto)
	if sl == nil {
		return nil, maglev.NoBackend
	}
	three := fl.key
	three.rest = uint64(fl.proto)
	bi := sl.svc.table.Lookup(flowHash(three, s.k0, s.k1))
	if int(bi) >= len(sl.svc.backends) {
		return sl, maglev.NoBackend
	}
	return sl, bi
}

// tooBig handles a packet whose encapsulation would exceed the MTU: an
// IPv4 packet with DF set or an IPv6 packet is answered with ICMP
// fragmentation-needed / ICMPv6 packet-too-big, built in place in front of
// the start of the packet it quotes; anything else is dropped.
func (w *Worker) tooBig(p *Packet, s *Snapshot, sl *svcSlot, hdrLen int, fl *flow) Result {
	buf, off := p.Buf, p.Off
	innerLen := fl.end - fl.inner
	mtu := s.mtu - hdrLen // what the client may send: the MTU less the egress headers (GRE key included)
	if fl.kind == kindICMPError || fl.kind == kindLaterFrag {
		// No ICMP error about an ICMP error, nor about a fragment other
		// than the first (RFC 1122 3.2.2, RFC 4443 2.4).
		return Result{Verdict: Drop, Reason: TooBig}
	}
	macs := *(*[12]byte)(buf[off:])
	in := buf[fl.inner:fl.end]
	if !fl.v6 {
		if fl.df == 0 {
			return Result{Verdict: Drop, Reason: TooBig}
		}
		const hdr = header.IPv4MinLen + header.ICMPHeaderLen
		quote := min(innerLen, fl.hl+8)
		start := fl.inner - header.EthernetLen - hdr
		if start < 0 {
			return Result{Verdict: Drop, Reason: NoHeadroom}
		}
		client, vip := header.IPv4(in).Src(), header.IPv4(in).Dst()
		o := buf[start : fl.inner+quote]
		replyEthernet(o, &macs, header.EtherTypeIPv4)
		header.IPv4(o[header.EthernetLen:]).Encode(header.IPv4Fields{
			TotalLen: uint16(hdr + quote), TTL: 64, Protocol: header.ProtoICMP, Src: vip, Dst: client,
		})
		icmp := o[ethIPv4Len:]
		icmp[0], icmp[1] = header.ICMPDestUnreach, header.ICMPFragNeeded
		be.PutUint16(icmp[2:], 0)
		be.PutUint16(icmp[4:], 0)
		be.PutUint16(icmp[6:], uint16(mtu))
		be.PutUint16(icmp[2:], ^header.Checksum(icmp, 0))
		p.Off, p.Len = start, len(o)
		return Result{Verdict: Tx, Reason: ICMPTooBig, Service: sl.idx}
	}
	const hdr = header.IPv6Len + header.ICMPHeaderLen
	quote := min(innerLen, 1280-hdr) // the reply fits the IPv6 minimum MTU
	start := fl.inner - header.EthernetLen - hdr
	if start < 0 {
		return Result{Verdict: Drop, Reason: NoHeadroom}
	}
	client, vip := header.IPv6(in).Src(), header.IPv6(in).Dst()
	o := buf[start : fl.inner+quote]
	replyEthernet(o, &macs, header.EtherTypeIPv6)
	header.IPv6(o[header.EthernetLen:]).Encode(header.IPv6Fields{
		PayloadLen: uint16(header.ICMPHeaderLen + quote), NextHeader: header.ProtoICMPv6, HopLimit: 64, Src: vip, Dst: client,
	})
	icmp := o[ethIPv6Len:]
	icmp[0], icmp[1] = header.ICMPv6PacketTooBig, 0
	be.PutUint16(icmp[2:], 0)
	be.PutUint32(icmp[4:], uint32(max(mtu, 1280))) // below the IPv6 minimum would be ignored (RFC 8201)
	// The ICMPv6 checksum covers a pseudo-header: addresses, length, next header.
	pseudo := uint32(header.Checksum(vip[:], 0)) + uint32(header.Checksum(client[:], 0)) +
		uint32(header.ICMPHeaderLen+quote) + header.ProtoICMPv6
	be.PutUint16(icmp[2:], ^header.Checksum(icmp, pseudo))
	p.Off, p.Len = start, len(o)
	return Result{Verdict: Tx, Reason: ICMPTooBig, Service: sl.idx}
}

// replyEthernet addresses a reply back where the frame came from.
func replyEthernet(o []byte, macs *[12]byte, etherType uint16) {
	copy(o[0:6], macs[6:12])
	copy(o[6:12], macs[0:6])
	be.PutUint16(o[12:], etherType)
}

// parseGeneral follows docs/verdicts.md step by step for any frame. It
// fills fl and returns a Tx result when the packet is ours and forwardable
// so far (a service and a backend are still to be found), and the final
// result otherwise.
func (w *Worker) parseGeneral(p *Packet, fl *flow) Result {
	s := w.snap
	buf, off := p.Buf, p.Off
	b := buf[off : off+p.Len]
	if len(b) < header.EthernetLen {
		return Result{Verdict: Pass, Reason: NotIP}
	}
	var innerAt, innerEnd int // the inner packet's region in b
	gre := false
	switch header.Ethernet(b).Type() {
	case header.EtherTypeIPv4:
		if len(b) < ethIPv4Len {
			return Result{Verdict: Pass, Reason: NotOurs}
		}
		ip := header.IPv4(b[header.EthernetLen:])
		dst := ip.Dst()
		if dst == s.local && ip.Protocol() == header.ProtoGRE {
			hl, tl, ok := ip.Lengths()
			if !ok || hl+header.GREMinLen > tl {
				return Result{Verdict: Drop, Reason: Malformed}
			}
			if ip.IsFragment() {
				return Result{Verdict: Drop, Reason: Fragment}
			}
			innerAt, innerEnd, gre = header.EthernetLen+hl, header.EthernetLen+tl, true
			fl.viaGRE, fl.from = true, mapped4(ip.Src())
		} else if s.isVIP(mapped4(dst)) {
			innerAt, innerEnd, fl.v6 = header.EthernetLen, len(b), false
		} else {
			return Result{Verdict: Pass, Reason: NotOurs}
		}
	case header.EtherTypeIPv6:
		if len(b) < ethIPv6Len {
			return Result{Verdict: Pass, Reason: NotOurs}
		}
		ip6 := header.IPv6(b[header.EthernetLen:])
		dst := dst6(ip6)
		if dst.isMapped() {
			// An IPv6 packet to an IPv4-mapped address is no address of ours.
			return Result{Verdict: Pass, Reason: NotOurs}
		}
		if s.hasLocal6 && dst == s.local6 {
			if ip6.Version() != 6 || ethIPv6Len+ip6.PayloadLen() > len(b) {
				return Result{Verdict: Pass, Reason: NotOurs}
			}
			end := ethIPv6Len + ip6.PayloadLen()
			nh, at, fragAt, r := walkExtensions(b[:end], ip6.NextHeader(), ethIPv6Len)
			if r != ReasonNone || nh != header.ProtoGRE {
				return Result{Verdict: Pass, Reason: NotOurs}
			}
			if fragAt != 0 {
				return Result{Verdict: Drop, Reason: Fragment}
			}
			innerAt, innerEnd, gre = at, end, true
			fl.viaGRE, fl.from = true, src6(ip6)
		} else if s.isVIP(dst) {
			innerAt, innerEnd, fl.v6 = header.EthernetLen, len(b), true
		} else {
			return Result{Verdict: Pass, Reason: NotOurs}
		}
	default:
		return Result{Verdict: Pass, Reason: NotIP}
	}

	if gre {
		// §2: the GRE header starts at innerAt.
		g := b[innerAt:innerEnd]
		if len(g) < header.GREMinLen {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		flags := be.Uint16(g)
		if flags&^header.GREFlagsSupported != 0 {
			return Result{Verdict: Drop, Reason: Unsupported}
		}
		gl := header.GRELen(flags)
		if gl > len(g) {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		switch be.Uint16(g[2:]) {
		case header.EtherTypeIPv4:
			fl.v6 = false
		case header.EtherTypeIPv6:
			fl.v6 = true
		default:
			return Result{Verdict: Drop, Reason: Unsupported}
		}
		if flags&header.GREFlagChecksum != 0 && header.Checksum(g, 0) != 0xffff {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		innerAt += gl
	}
	return w.parseInner(fl, b[innerAt:innerEnd], off+innerAt, gre)
}

// src6 and dst6 are an IPv6 header's addresses.
func src6(ip6 header.IPv6) addr128 {
	hi, lo := ip6.SrcWords()
	return addr128{hi, lo}
}

func dst6(ip6 header.IPv6) addr128 {
	hi, lo := ip6.DstWords()
	return addr128{hi, lo}
}

// parseInner is docs/verdicts.md §3, steps 1 to 4, for the inner packet in
// region, which starts at buffer offset at.
func (w *Worker) parseInner(fl *flow, region []byte, at int, gre bool) Result {
	s := w.snap
	var l4 []byte // the transport header to the end of the packet
	var src, dst addr128
	var proto uint8
	frag, later := false, false
	if !fl.v6 {
		in := header.IPv4(region)
		hl, tl, ok := in.Lengths()
		if !ok {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		src, dst = mapped4(in.Src()), mapped4(in.Dst())
		if gre && !s.isVIP(dst) {
			return Result{Verdict: Pass, Reason: NoService}
		}
		fw := in.FlagsFrag()
		frag, later = in.IsFragment(), fw&header.IPv4FragOffset != 0
		proto, l4 = in.Protocol(), region[hl:tl]
		fl.id, fl.df, fl.fragID, fl.hl = in.ID(), fw&header.IPv4FlagDF, uint32(in.ID()), hl
		fl.end = at + tl
	} else {
		if len(region) < header.IPv6Len {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		ip6 := header.IPv6(region)
		end := header.IPv6Len + ip6.PayloadLen()
		if ip6.Version() != 6 || end > len(region) {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		src, dst = src6(ip6), dst6(ip6)
		if gre && (dst.isMapped() || !s.isVIP(dst)) {
			return Result{Verdict: Pass, Reason: NoService}
		}
		pkt := region[:end]
		nh, l4at, fragAt, r := walkExtensions(pkt, ip6.NextHeader(), header.IPv6Len)
		if r != ReasonNone {
			return Result{Verdict: Drop, Reason: r}
		}
		if fragAt != 0 {
			fh := pkt[fragAt : fragAt+header.IPv6FragmentLen]
			frag, later, fl.fragID = true, be.Uint16(fh[2:])>>3 != 0, be.Uint32(fh[4:])
		}
		proto, l4 = nh, pkt[l4at:]
		fl.df = header.IPv4FlagDF
		fl.end = at + end
	}
	fl.inner = at

	// Step 4: ports, by protocol.
	var ports uint32
	kind := kindPlain
	switch {
	case later:
		kind = kindLaterFrag
	case proto == header.ProtoTCP || proto == header.ProtoUDP:
		if len(l4) < header.PortsLen {
			return Result{Verdict: Drop, Reason: Malformed}
		}
		ports = be.Uint32(l4)
		if proto == header.ProtoTCP && len(l4) >= 14 {
			fl.tcpFlags = l4[13]
		}
		if frag {
			kind = kindFirstFrag
		}
	case (proto == header.ProtoICMP && !fl.v6) || (proto == header.ProtoICMPv6 && fl.v6):
		if len(l4) >= 1 && header.IsICMPError(fl.v6, l4[0]) {
			// The embedded packet is the backend's reply: reverse its flow.
			_, edst, eproto, eports, ok := embedded(fl.v6, l4)
			if !ok {
				return Result{Verdict: Drop, Reason: Malformed}
			}
			src, proto, ports = edst, eproto, eports<<16|eports>>16
			kind = kindICMPError
		} else if len(l4) >= 1 && header.IsEchoRequest(fl.v6, l4[0]) {
			kind = kindEcho
		}
	}
	if frag && kind == kindPlain {
		kind = kindFirstFrag
	}
	fl.kind, fl.proto, fl.port = kind, proto, uint16(ports)
	fl.key = makeFlowKey(src, dst, ports, proto)
	fl.l4 = fl.end - len(l4)
	return Result{Verdict: Tx}
}

// embedded parses the packet quoted in an ICMP error message l4 (the ICMP
// header first): its addresses, protocol and ports. It needs a valid IP
// header of the family and 4 bytes of the transport header; the quote may
// be shorter than the packet's own length fields say.
func embedded(v6 bool, l4 []byte) (src, dst addr128, proto uint8, ports uint32, ok bool) {
	if len(l4) < header.ICMPHeaderLen {
		return
	}
	q := l4[header.ICMPHeaderLen:]
	if !v6 {
		if len(q) < header.IPv4MinLen {
			return
		}
		// The quote may be shorter than its own total length says.
		ip := header.IPv4(q)
		hl := ip.HeaderLen()
		if ip.Version() != 4 || hl < header.IPv4MinLen || hl > ip.TotalLen() || hl+header.PortsLen > len(q) {
			return
		}
		return mapped4(ip.Src()), mapped4(ip.Dst()), ip.Protocol(), quotedPorts(ip.Protocol(), q[hl:]), true
	}
	if len(q) < header.IPv6Len || header.IPv6(q).Version() != 6 {
		return
	}
	nh, at, _, r := walkExtensions(q, header.IPv6(q).NextHeader(), header.IPv6Len)
	if r != ReasonNone || at+header.PortsLen > len(q) {
		return
	}
	return src6(header.IPv6(q)), dst6(header.IPv6(q)), nh, quotedPorts(nh, q[at:]), true
}

// quotedPorts are the ports of a quoted TCP or UDP header; 0 for other
// protocols, whose flows have no ports either.
func quotedPorts(proto uint8, l4 []byte) uint32 {
	if proto == header.ProtoTCP || proto == header.ProtoUDP {
		return be.Uint32(l4)
	}
	return 0
}

// walkExtensions follows IPv6 extension headers in b from next header nh at
// offset at: the final next header (for a later fragment, the protocol
// its data belongs to), where it starts, where the fragment header is (0:
// none), and Unsupported when there are more than maxExtensions, Malformed
// when a header runs past b, ReasonNone otherwise.
func walkExtensions(b []byte, nh uint8, at int) (uint8, int, int, Reason) {
	fragAt := 0
	for i := 0; header.IsExtension(nh); i++ {
		if i == maxExtensions {
			return nh, at, fragAt, Unsupported
		}
		if at+2 > len(b) {
			return nh, at, fragAt, Malformed
		}
		el := header.ExtensionLen(nh, b[at:])
		if at+el > len(b) {
			return nh, at, fragAt, Malformed
		}
		next := b[at]
		if nh == header.ProtoFragment {
			fragAt = at
			if be.Uint16(b[at+2:])>>3 != 0 {
				return next, at + el, fragAt, ReasonNone // a later fragment: data follows
			}
		}
		nh, at = next, at+el
	}
	return nh, at, fragAt, ReasonNone
}
