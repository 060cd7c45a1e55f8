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

// flow is what parsing found out about a packet that is ours: the inner
// 5-tuple, what the outer header needs from the inner one, and where the
// egress frame goes in the buffer.
type flow struct {
	src, dst, ports uint32
	proto           uint8
	id, df          uint16 // inner IPv4 identification and DF bit
	start, end      int    // egress frame: buf[start:end]; the inner packet is buf[start+outerLen:end]
}

// process is written so that a canonical GRE frame with a connection
// already in the table makes no function call at all: in Go every call
// spills every live register, which costs more here than the work itself.
func (w *Worker) process(p *Packet) Result {
	buf, off, n := p.Buf, p.Off, p.Len
	if uint(off) > uint(len(buf)) || uint(n) > uint(len(buf)-off) {
		return Result{Verdict: Drop, Reason: Malformed}
	}
	s := w.snap
	var fl flow
	// Fast path: the frame every router sends — GRE to us with no options
	// or flags around an option-less, unfragmented inner TCP or UDP packet.
	// It reads fixed offsets of one array and so needs no bounds checks;
	// anything else takes parseGeneral, which decides the same way
	// (TestFastPathMatchesGeneral).
	if n >= fastLen && !w.generalOnly {
		f := (*[fastLen]byte)(buf[off:])
		otl := int(be.Uint16(f[16:]))
		itl := int(be.Uint16(f[40:]))
		fl.proto = f[47]
		if be.Uint32(f[12:])>>8 == 0x08_00_45 && f[23] == header.ProtoGRE &&
			be.Uint32(f[30:]) == s.local && be.Uint16(f[20:])&(header.IPv4FlagMF|header.IPv4FragOffset) == 0 &&
			be.Uint32(f[34:]) == header.EtherTypeIPv4 && f[38] == 0x45 &&
			be.Uint16(f[44:])&(header.IPv4FlagMF|header.IPv4FragOffset) == 0 &&
			(fl.proto == header.ProtoTCP || fl.proto == header.ProtoUDP) &&
			otl == EncapLen+itl && itl >= header.IPv4MinLen+header.PortsLen && header.EthernetLen+otl <= n {
			fl.src, fl.dst, fl.ports = be.Uint32(f[50:]), be.Uint32(f[54:]), be.Uint32(f[58:])
			fl.id, fl.df = be.Uint16(f[42:]), be.Uint16(f[44:])&header.IPv4FlagDF
			fl.start, fl.end = off, off+header.EthernetLen+otl
		} else {
			var r Result
			if fl, r = w.parseGeneral(p); r.Verdict != Tx {
				return r
			}
		}
	} else {
		var r Result
		if fl, r = w.parseGeneral(p); r.Verdict != Tx {
			return r
		}
	}

	// The service: the exact (vip, port, protocol) slot first, inline.
	k := svcKey(fl.dst, uint16(fl.ports), fl.proto)
	sl := &s.svcSlots[slotHash(k)&s.svcMask]
	if sl.key != k {
		if sl = s.lookupWild(fl.dst, uint16(fl.ports), fl.proto); sl == nil {
			return Result{Verdict: Pass, Reason: NoService}
		}
	}
	svc := sl.svc

	// The backend: the connection table first, then Maglev.
	key := makeFlowKey(fl.src, fl.dst, fl.ports, fl.proto)
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
	if bi = w.miss(svc, bucket, key, h); bi == maglev.NoBackend {
		return Result{Verdict: Drop, Reason: NoBackend}
	}

rewrite:
	// Egress headers end right before the inner packet, which never moves.
	bk := &svc.backends[bi]
	o := (*[outerLen]byte)(buf[fl.start:fl.end])
	macs := *(*[12]byte)(buf[off:]) // the ingress MACs, before o overwrites them
	switch s.nextHop {
	case NextHopIngress:
		*(*[6]byte)(o[0:6]) = *(*[6]byte)(macs[6:12])
	case NextHopMAC:
		*(*[6]byte)(o[0:6]) = s.hopMAC
	default:
		if !bk.hasMAC {
			return Result{Verdict: Drop, Reason: NoNeighbor}
		}
		*(*[6]byte)(o[0:6]) = bk.mac
	}
	*(*[6]byte)(o[6:12]) = *(*[6]byte)(macs[0:6])
	o[12], o[13] = 0x08, 0x00
	*(*[EncapLen]byte)(o[header.EthernetLen:]) = bk.hdr
	total := uint32(fl.end - fl.start - header.EthernetLen)
	be.PutUint16(o[16:], uint16(total))
	be.PutUint16(o[18:], fl.id)
	be.PutUint16(o[20:], fl.df)
	sum := bk.sum + total + uint32(fl.id) + uint32(fl.df)
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	be.PutUint16(o[24:], ^uint16(sum))
	p.Off, p.Len = fl.start, fl.end-fl.start
	w.countBackend(bk.id)
	return Result{Verdict: Tx, Service: sl.idx, Backend: bi}
}

// miss handles a flow the connection table does not know (or knows with a
// backend that is gone or unhealthy): Maglev picks, the table records.
func (w *Worker) miss(svc *service, bucket *ctBucket, key flowKey, h uint64) uint16 {
	w.misses++
	bi := svc.table.Lookup(h)
	if int(bi) >= len(svc.backends) { // maglev.NoBackend included
		return maglev.NoBackend
	}
	w.ct.insert(bucket, key, bi, svc.backends[bi].addr, w.now)
	return bi
}

// parseGeneral follows docs/verdicts.md step by step for any frame. It
// returns a Tx result with the flow when the packet is ours and
// forwardable so far (a service and a backend are still to be found), and
// the final result otherwise.
func (w *Worker) parseGeneral(p *Packet) (flow, Result) {
	s := w.snap
	buf, off := p.Buf, p.Off
	b := buf[off : off+p.Len]
	if len(b) < ethIPv4Len {
		if len(b) < header.EthernetLen || be.Uint16(b[12:]) != header.EtherTypeIPv4 {
			return flow{}, Result{Verdict: Pass, Reason: NotIP}
		}
		return flow{}, Result{Verdict: Pass, Reason: NotOurs}
	}
	hdr := (*[ethIPv4Len]byte)(b)
	if hdr[12] != 0x08 || hdr[13] != 0x00 {
		return flow{}, Result{Verdict: Pass, Reason: NotIP}
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
			return flow{}, Result{Verdict: Drop, Reason: Malformed}
		}
		if be.Uint16(hdr[20:])&(header.IPv4FlagMF|header.IPv4FragOffset) != 0 {
			return flow{}, Result{Verdict: Drop, Reason: Fragment}
		}
		g := header.EthernetLen + hl
		flags := be.Uint16(b[g:])
		if flags&^header.GREFlagsSupported != 0 {
			return flow{}, Result{Verdict: Drop, Reason: Unsupported}
		}
		innerAt, innerEnd = g+header.GRELen(flags), header.EthernetLen+tl
		if innerAt > innerEnd {
			return flow{}, Result{Verdict: Drop, Reason: Malformed}
		}
		if be.Uint16(b[g+2:]) != header.EtherTypeIPv4 {
			return flow{}, Result{Verdict: Drop, Reason: Unsupported}
		}
		gre = true
	} else if s.isVIP(dst) {
		innerAt, innerEnd = header.EthernetLen, len(b)
	} else {
		return flow{}, Result{Verdict: Pass, Reason: NotOurs}
	}

	// The inner packet.
	region := b[innerAt:innerEnd]
	if len(region) < header.IPv4MinLen {
		return flow{}, Result{Verdict: Drop, Reason: Malformed}
	}
	in := (*[header.IPv4MinLen]byte)(region)
	hl := int(in[0]&0xf) << 2
	tl := int(be.Uint16(in[2:]))
	if in[0]>>4 != 4 || hl < header.IPv4MinLen || hl > tl || tl > len(region) {
		return flow{}, Result{Verdict: Drop, Reason: Malformed}
	}
	fl := flow{src: be.Uint32(in[12:]), dst: be.Uint32(in[16:]), proto: in[9], id: be.Uint16(in[4:])}
	fragWord := be.Uint16(in[6:])
	if fragWord&(header.IPv4FlagMF|header.IPv4FragOffset) != 0 {
		// A GRE-inner packet to something that is not a VIP is not ours,
		// fragment or not.
		if gre && !s.isVIP(fl.dst) {
			return flow{}, Result{Verdict: Pass, Reason: NoService}
		}
		return flow{}, Result{Verdict: Drop, Reason: Fragment}
	}
	fl.df = fragWord & header.IPv4FlagDF
	if fl.proto == header.ProtoTCP || fl.proto == header.ProtoUDP {
		if hl+header.PortsLen > tl {
			return flow{}, Result{Verdict: Drop, Reason: Malformed}
		}
		fl.ports = be.Uint32(region[hl:])
	}
	if s.lookupService(fl.dst, uint16(fl.ports), fl.proto) == nil {
		return flow{}, Result{Verdict: Pass, Reason: NoService}
	}
	// The inner packet stays where it is; the new headers end right before it.
	fl.start, fl.end = off+innerAt-outerLen, off+innerAt+tl
	if fl.start < 0 {
		return flow{}, Result{Verdict: Drop, Reason: NoHeadroom}
	}
	return fl, Result{Verdict: Tx}
}
