package pipeline

import (
	"fmt"

	"github.com/rail-lb/rail/maglev"
	"github.com/rail-lb/rail/pipeline/header"
	"github.com/rail-lb/rail/quiclb"
)

// This file routes QUIC by connection ID (QUIC-LB, docs/QUIC.md). A UDP
// service with a QUIC-LB configuration reads the destination connection
// ID of each packet, decodes the server id in it, and sends the packet to
// the healthy backend with that id, whatever the packet's 5-tuple: a
// client that changes address or port keeps its server. Anything that
// does not decode to such a backend takes the 5-tuple path as before.

// quicService is a service's QUIC-LB routing: a codec per configuration,
// by config id (their AES keys expanded once, here), and the backends by
// server id, which every configuration shares.
type quicService struct {
	codecs [quiclb.MaxConfigID + 2]*quiclb.Codec // by config id 0…7; nil: none (7 never has one)
	ids    map[quiclb.ServerID]uint16            // server id → backend index
}

// newQUICService builds sc's QUIC-LB routing; nil when it has none.
func newQUICService(sc ServiceConfig) (*quicService, error) {
	if len(sc.QUIC) == 0 {
		return nil, nil
	}
	if sc.Proto != header.ProtoUDP {
		return nil, fmt.Errorf("service %q: QUIC-LB needs protocol udp", sc.Name)
	}
	q := &quicService{ids: make(map[quiclb.ServerID]uint16)}
	sidLen := sc.QUIC[0].ServerIDLen
	for _, c := range sc.QUIC {
		k, err := quiclb.NewCodec(c)
		if err != nil {
			return nil, fmt.Errorf("service %q: quic: %w", sc.Name, err)
		}
		if q.codecs[c.ID] != nil {
			return nil, fmt.Errorf("service %q: quic: config id %d twice", sc.Name, c.ID)
		}
		if c.ServerIDLen != sidLen {
			return nil, fmt.Errorf("service %q: quic: config id %d has server ids of %d octets, config id %d of %d", sc.Name, c.ID, c.ServerIDLen, sc.QUIC[0].ID, sidLen)
		}
		q.codecs[c.ID] = k
	}
	for i, b := range sc.Backends {
		if b.QUICServerID.Len() == 0 || b.Remote {
			continue
		}
		if b.QUICServerID.Len() != sidLen {
			return nil, fmt.Errorf("service %q: backend %v: server id %v is not %d octets", sc.Name, b.Address, b.QUICServerID, sidLen)
		}
		if j, dup := q.ids[b.QUICServerID]; dup {
			return nil, fmt.Errorf("service %q: server id %v is backend %v's and %v's", sc.Name, b.QUICServerID, sc.Backends[j].Address, b.Address)
		}
		q.ids[b.QUICServerID] = uint16(i)
	}
	return q, nil
}

// QUIC version numbers whose long-header packet types the router knows.
const (
	quicV1 = 0x00000001
	quicV2 = 0x6b3343cf
	// quicMaxCIDLen is the longest connection ID QUIC versions 1 and 2 allow.
	quicMaxCIDLen = 20
	// udpHeaderLen is what precedes a UDP payload.
	udpHeaderLen = 8
)

// quicDCID returns the destination connection ID of the QUIC packet at
// the start of a UDP payload — for a short header, whose ID has no length
// field, everything after the first octet (the configuration its first
// octet names says how much of it is the ID) — or false when the packet
// cannot carry a connection ID its server chose: empty, version
// negotiation, an unknown version, a long-header DCID over 20 octets or
// past the end, or an Initial or 0-RTT packet, whose DCID the client may
// have picked at random (those go by the 5-tuple, so that new connections
// follow Maglev and its weights).
func quicDCID(b []byte) ([]byte, bool) {
	if len(b) < 2 {
		return nil, false
	}
	if b[0]&0x80 == 0 { // short header: the first octet, then the DCID
		return b[1:], true
	}
	if len(b) < 6 {
		return nil, false
	}
	typ := b[0] >> 4 & 3
	switch be.Uint32(b[1:]) {
	case quicV1:
		if typ == 0 || typ == 1 { // Initial, 0-RTT
			return nil, false
		}
	case quicV2:
		if typ == 1 || typ == 2 { // Initial, 0-RTT (RFC 9369)
			return nil, false
		}
	default:
		return nil, false
	}
	n := int(b[5])
	if n > quicMaxCIDLen || len(b) < 6+n {
		return nil, false
	}
	return b[6 : 6+n], true
}

// quicRoute is the QUIC-LB step of processGeneral, for a packet of a
// service with a QUIC-LB configuration whose 5-tuple the connection table
// does not have (or has with a backend that is gone or unhealthy): the
// index of the healthy backend its DCID names, recorded for the tuple as
// Maglev's pick would be, or maglev.NoBackend to go on by the 5-tuple. A
// client that moves to a new address or port is such a new tuple; a tuple
// the table has keeps its backend, so the fast path and this path agree.
func (w *Worker) quicRoute(svc *service, p *Packet, fl *flow, at ctSlot) uint16 {
	if fl.kind != kindPlain || fl.proto != header.ProtoUDP {
		return maglev.NoBackend
	}
	bi := maglev.NoBackend
	if fl.l4+udpHeaderLen <= fl.end {
		bi = w.quicBackend(svc.quic, svc.backends, p.Buf[fl.l4+udpHeaderLen:fl.end])
	}
	if bi == maglev.NoBackend {
		w.quicFallback++
		return bi
	}
	w.quicRouted++
	w.ct.insert(at, &fl.key, 0, bi, svc.backends[bi].tag, w.now)
	return bi
}

// quicBackend decodes the server id in the DCID of payload and returns its
// backend if that is healthy, else maglev.NoBackend.
func (w *Worker) quicBackend(q *quicService, backends []backend, payload []byte) uint16 {
	dcid, ok := quicDCID(payload)
	if !ok {
		return maglev.NoBackend
	}
	if _, bi, why := q.route(dcid, &w.quicScratch, backends); why == quicOK {
		return bi
	}
	return maglev.NoBackend
}

// Why a connection ID names no usable backend (QUICTrace.Why).
const (
	quicOK          = ""
	quicNoConfig    = "no configuration of the service has this config id"
	quicUndecodable = "shorter than its configuration's connection IDs"
	quicUnknownID   = "no backend has this server id"
	quicUnhealthy   = "the backend with this server id is down"
)

// route decodes dcid and returns its server id, the index of the backend
// with it (maglev.NoBackend: none) and why a packet with it is not routed
// to that backend (quicOK: it is).
func (q *quicService) route(dcid []byte, s *quiclb.Scratch, backends []backend) (quiclb.ServerID, uint16, string) {
	var sid quiclb.ServerID
	if len(dcid) == 0 {
		return sid, maglev.NoBackend, quicUndecodable
	}
	k := q.codecs[dcid[0]>>5] // the config rotation bits choose the configuration
	if k == nil {
		return sid, maglev.NoBackend, quicNoConfig
	}
	sid, ok := k.Decode(dcid, s)
	if !ok {
		return sid, maglev.NoBackend, quicUndecodable
	}
	bi, ok := q.ids[sid]
	if !ok || int(bi) >= len(backends) {
		return sid, maglev.NoBackend, quicUnknownID
	}
	if !backends[bi].healthy {
		return sid, bi, quicUnhealthy
	}
	return sid, bi, quicOK
}

// QUICTrace is what QUIC-LB makes of a destination connection ID for a
// traced flow's service (railctl trace --dcid).
type QUICTrace struct {
	// Configured: the service has a QUIC-LB configuration; nothing else
	// is set without one.
	Configured bool
	// ConfigID is the config id the ID's first octet carries.
	ConfigID uint8
	// Decoded: the ID is of one of the service's config ids and long
	// enough for it; ServerID is then what it decodes to.
	Decoded  bool
	ServerID quiclb.ServerID
	// Backend is the backend with that server id (an index in the
	// service's backends), maglev.NoBackend when none has it.
	Backend uint16
	// Routed: a packet with this ID on a tuple the connection table does
	// not have goes to Backend; else Why says why it goes by the 5-tuple.
	Routed bool
	Why    string
}

// TraceQUIC decodes dcid, the destination connection ID of a QUIC packet
// (octets past its configuration's length do not count), for t's
// service.
func (s *Snapshot) TraceQUIC(t *TraceResult, dcid []byte) QUICTrace {
	qt := QUICTrace{Backend: maglev.NoBackend}
	if t.Service < 0 || s.services[t.Service].quic == nil {
		return qt
	}
	svc := &s.services[t.Service]
	qt.Configured = true
	if len(dcid) > 0 {
		qt.ConfigID = dcid[0] >> 5
	}
	var sc quiclb.Scratch
	sid, bi, why := svc.quic.route(dcid, &sc, svc.backends)
	qt.Decoded = why != quicUndecodable && why != quicNoConfig
	if qt.Decoded {
		qt.ServerID = sid
	}
	qt.Backend, qt.Routed, qt.Why = bi, why == quicOK, why
	return qt
}

// QUICNew is the verdict for a packet with that connection ID on a tuple
// no connection entry has: to the ID's backend when QUIC-LB routes it,
// else t.SYN (Maglev).
func (s *Snapshot) QUICNew(t *TraceResult, q QUICTrace) Decision {
	if !q.Routed {
		return t.SYN
	}
	return s.decide(t, q.Backend, false)
}
