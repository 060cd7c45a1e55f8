package pipeline

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/rail-lb/rail/internal/pow2"
	"github.com/rail-lb/rail/maglev"
	"github.com/rail-lb/rail/pipeline/header"
	"github.com/rail-lb/rail/quiclb"
)

// MaxBackendIDs bounds the stable backend IDs that index per-core packet
// counters. Control assigns IDs; they survive snapshot swaps so counters do
// not move when the backend set changes.
const MaxBackendIDs = 4096

// NextHopMode says where egress frames are sent at the Ethernet layer.
type NextHopMode uint8

const (
	// NextHopIngress sends a frame back to the MAC it came from (the router).
	NextHopIngress NextHopMode = iota
	// NextHopMAC sends every frame to one fixed MAC.
	NextHopMAC
	// NextHopBackend sends each frame to its backend's own next-hop MAC
	// (BackendConfig.MAC, resolved by control from the kernel's routes and
	// neighbours); a backend with none yet is dropped as no_neighbor.
	NextHopBackend
)

// Config describes everything the data path needs. Control builds one from
// the configuration file (plus health state) and turns it into a Snapshot
// with NewSnapshot, off the data path.
type Config struct {
	MTU        int        // the interface MTU: largest egress IP packet; 0 = no limit
	Local      netip.Addr // local_address: the IPv4 GRE destination that is ours
	Local6     netip.Addr // local_address6: the IPv6 one (optional; needed for IPv6 backends)
	NextHop    NextHopMode
	NextHopMAC header.MAC
	Seed       uint64
	Services   []ServiceConfig
}

// ServiceConfig is one service of a Config.
type ServiceConfig struct {
	Name      string
	VIP       netip.Addr
	Port      uint16 // 0 = every port
	Proto     uint8  // 6, 17, or 0 = any
	TableSize uint32 // prime
	Backends  []BackendConfig
	// SecondChance: while some backend is Filling or Draining, a packet
	// whose pick differs between the current table and the one before the
	// transition carries the other pick in its GRE key (docs/DSR.md).
	SecondChance bool
	// QUIC, for a UDP service, routes QUIC packets by the server id in
	// their destination connection ID (QUIC-LB, quic.go): one
	// configuration, or several of distinct config ids (rotation), all
	// with the same server id length; empty: none.
	QUIC []quiclb.Config
}

// BackendState is a backend's place in a transition, declared in the
// configuration so that every node derives the same tables from it.
type BackendState uint8

const (
	// Active backends are in both tables.
	Active BackendState = iota
	// Filling backends are new: in the current table, not in the one
	// before the transition.
	Filling
	// Draining backends are on their way out: no new flows (out of the
	// current table) but still in the one before the transition, so their
	// connections find them as a second hop.
	Draining
)

// BackendConfig is one backend of a service.
type BackendConfig struct {
	Address netip.Addr
	Key     string // the Maglev key: name, else address
	Weight  uint32 // 0 = drain: no new flows, existing ones stay
	Healthy bool
	ID      uint32 // stable counter index < MaxBackendIDs
	// MAC is the next hop towards this backend, used with NextHopBackend
	// when HasMAC is set.
	MAC    header.MAC
	HasMAC bool
	// State is the backend's lifecycle state.
	State BackendState
	// Remote marks another Rail node standing in for the service's
	// backends while it has none (when_down: forward): the packet goes to
	// it in GRE, as the router would send it. A packet that came from such
	// a node in GRE is never sent to one again, so forwarding cannot loop.
	Remote bool
	// QUICServerID is the backend's QUIC-LB server id (length 0: none).
	QUICServerID quiclb.ServerID
}

// Snapshot is an immutable view of services, Maglev tables and backend
// health. Workers load the current one once per batch with an atomic load;
// control replaces it wholesale, never mutating one in use.
type Snapshot struct {
	local     uint32  // local_address (IPv4)
	local6    addr128 // local_address6; valid when hasLocal6
	hasLocal6 bool
	nextHop   NextHopMode
	hopMAC    header.MAC
	k0, k1    uint64 // flow hash keys derived from the seed
	mtu       int    // largest egress IP packet; 0 = no limit

	services []service
	svcSlots []svcSlot // open addressing, keyed by (vip, port, proto)
	vipSlots []vipSlot // open addressing, keyed by VIP
	svcMask  uint32
	vipMask  uint32

	cfg     Config
	rebuilt []string
}

// addr128 is an IP address as two words; IPv4 addresses are IPv4-mapped
// (::ffff:a.b.c.d), so one key type serves both families.
type addr128 struct{ hi, lo uint64 }

const v4Mapped = 0xffff << 32

func mapped4(a uint32) addr128 { return addr128{0, v4Mapped | uint64(a)} }

// isMapped reports whether a is an IPv4-mapped address (::ffff:a.b.c.d).
func (a addr128) isMapped() bool { return a.hi == 0 && a.lo>>32 == 0xffff }

func addrOf(a netip.Addr) addr128 {
	b := a.As16()
	return addr128{be.Uint64(b[:8]), be.Uint64(b[8:])}
}

type service struct {
	slot  *svcSlot // this service's slot in svcSlots
	table *maglev.Table
	// prev is the table before the transition in progress (second chance;
	// nil when there is none): a flow whose pick differs gets it as its
	// second hop.
	prev     *maglev.Table
	backends []backend
	name     string
	proto    uint8
	remote   bool         // some backend in the table is Remote: the service forwards to other nodes
	quic     *quicService // QUIC-LB routing (quic.go); nil: none
}

type backend struct {
	addr    uint32 // IPv4 backends
	addr6   [16]byte
	v6      bool // the outer header is IPv6 (from local_address6)
	remote  bool // another Rail node (BackendConfig.Remote)
	tag     uint32
	id      uint32
	healthy bool
	hasMAC  bool
	mac     header.MAC
	// hdr is the outer header for this backend — IPv4 (total length, ID,
	// flags and checksum zero) or IPv6 (payload length and flow label
	// zero) — followed by the 4-byte GRE header (protocol zero); hdrLen is
	// its length. sum is the IPv4 header's ones' complement sum, so a
	// packet needs only three additions to finish the checksum.
	hdr    [encapLen6]byte
	hdrLen int
	sum    uint32
}

// addrTag identifies a backend address in 32 bits: a connection entry
// records it and is honoured only while the backend at its index still has
// it.
func addrTag(a netip.Addr) uint32 {
	if a.Is4() {
		return v4(a)
	}
	b := a.As16()
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return uint32(h ^ h>>32)
}

type svcSlot struct {
	vip addr128
	pp  uint32 // port << 16 | proto << 8 | 1; 0 = empty
	svc *service
	idx uint16
}

// vipSlot is a VIP and, for its default services (docs/verdicts.md
// §3.6), the first service in configuration order overall and per
// protocol (none when there is none).
type vipSlot struct {
	vip                                 addr128
	used                                bool
	first, firstTCP, firstUDP, firstAny uint16
}

const noService = ^uint16(0)

func portProto(port uint16, proto uint8) uint32 {
	return uint32(port)<<16 | uint32(proto)<<8 | 1
}

// slotHash places an address and a port/protocol word in the slot tables.
// x is multiplied before it is mixed in: shifted in as it was before, its
// low bits (those of the protocol, always ...0001 in portProto) were all
// that reached a small table's index, so every service of a VIP started
// at the same slot and all but one missed the fast paths' exact lookup.
func slotHash(a addr128, x uint32) uint32 {
	return uint32(((a.lo ^ a.hi*0xff51afd7ed558ccd ^ uint64(x)*0xc2b2ae3d27d4eb4f) * 0x9e3779b97f4a7c15) >> 32)
}

// NewSnapshot validates c and builds the lookup structures and Maglev tables.
func NewSnapshot(c Config) (*Snapshot, error) { return NewSnapshotFrom(nil, c) }

// NewSnapshotFrom is NewSnapshot that reuses prev's Maglev table for every
// service whose table inputs are unchanged: same name, table size, seed and
// the same backends (address, key, weight, health) in the same order. Only
// changed services are rebuilt (see Rebuilt), so a reload or a health
// change costs what it changes. Connection entries need nothing: they are
// checked against the current backends on every hit.
func NewSnapshotFrom(prev *Snapshot, c Config) (*Snapshot, error) {
	if !c.Local.Is4() {
		return nil, fmt.Errorf("local address %v is not IPv4", c.Local)
	}
	if c.Local6.IsValid() && !c.Local6.Is6() {
		return nil, fmt.Errorf("local IPv6 address %v is not IPv6", c.Local6)
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		return nil, fmt.Errorf("MTU %d is out of range (576…65535)", c.MTU)
	}
	s := &Snapshot{
		local:     v4(c.Local),
		hasLocal6: c.Local6.IsValid(),
		nextHop:   c.NextHop,
		hopMAC:    c.NextHopMAC,
		k0:        splitmix64(c.Seed),
		mtu:       c.MTU,
		cfg:       c.clone(),
	}
	if s.hasLocal6 {
		s.local6 = addrOf(c.Local6)
	}
	s.k1 = splitmix64(s.k0)
	if len(c.Services) > 1<<15 {
		return nil, errors.New("too many services")
	}
	n := pow2.Ceil(max(4*len(c.Services), 2)) // mostly empty: a service is found in its own slot
	s.svcSlots = make([]svcSlot, n)
	s.vipSlots = make([]vipSlot, n)
	s.svcMask, s.vipMask = uint32(n-1), uint32(n-1)
	s.services = make([]service, len(c.Services))
	for i, sc := range c.Services {
		sc.VIP = sc.VIP.Unmap()
		if !sc.VIP.IsValid() || sc.VIP.IsUnspecified() || sc.VIP == c.Local || sc.VIP == c.Local6 {
			return nil, fmt.Errorf("service %q: VIP %v cannot be used", sc.Name, sc.VIP)
		}
		var old *service
		if p := prev.sameTable(sc, c.Seed); p != nil {
			old = p
		} else {
			s.rebuilt = append(s.rebuilt, sc.Name)
		}
		svc, err := buildService(c, sc, old)
		if err != nil {
			return nil, err
		}
		s.services[i] = svc
		vip := addrOf(sc.VIP)
		if !s.insertService(vip, portProto(sc.Port, sc.Proto), uint16(i)) {
			return nil, fmt.Errorf("service %q: duplicate (vip, port, protocol)", sc.Name)
		}
		s.insertVIP(vip, uint16(i), sc.Proto)
	}
	return s, nil
}

// sameTable returns the Maglev table prev built for a service with exactly
// sc's table inputs, or nil.
func (prev *Snapshot) sameTable(sc ServiceConfig, seed uint64) *service {
	if prev == nil || prev.cfg.Seed != seed {
		return nil
	}
	for i, ps := range prev.cfg.Services {
		if ps.Name != sc.Name || ps.TableSize != sc.TableSize || len(ps.Backends) != len(sc.Backends) || ps.SecondChance != sc.SecondChance {
			continue
		}
		for j, pb := range ps.Backends {
			b := sc.Backends[j]
			if pb.Address != b.Address || pb.Key != b.Key || pb.Weight != b.Weight || pb.Healthy != b.Healthy || pb.Remote != b.Remote || pb.State != b.State {
				return nil
			}
		}
		return &prev.services[i]
	}
	return nil
}

// Rebuilt names the services whose Maglev table this snapshot built (all
// of them for NewSnapshot; the changed ones for NewSnapshotFrom).
func (s *Snapshot) Rebuilt() []string { return s.rebuilt }

func buildService(c Config, sc ServiceConfig, old *service) (service, error) {
	svc := service{name: sc.Name, backends: make([]backend, len(sc.Backends)), proto: sc.Proto}
	mb := make([]maglev.Backend, len(sc.Backends))
	before := make([]maglev.Backend, len(sc.Backends)) // the table before the transition
	transition := false
	q, err := newQUICService(sc)
	if err != nil {
		return svc, err
	}
	svc.quic = q
	for j, bc := range sc.Backends {
		a := bc.Address.Unmap()
		if !a.IsValid() || a.IsUnspecified() {
			return svc, fmt.Errorf("service %q: backend address %v cannot be used", sc.Name, bc.Address)
		}
		if a.Is6() && !c.Local6.IsValid() {
			return svc, fmt.Errorf("service %q: backend %v is IPv6: set local_address6", sc.Name, a)
		}
		if bc.ID >= MaxBackendIDs {
			return svc, fmt.Errorf("service %q: backend %v: id %d out of range", sc.Name, a, bc.ID)
		}
		b := &svc.backends[j]
		b.id, b.healthy, b.tag, b.remote = bc.ID, bc.Healthy, addrTag(a), bc.Remote
		svc.remote = svc.remote || bc.Remote && bc.Weight > 0
		b.mac, b.hasMAC = bc.MAC, bc.HasMAC
		if a.Is4() {
			b.addr = v4(a)
			header.IPv4(b.hdr[:]).Encode(header.IPv4Fields{TTL: 64, Protocol: header.ProtoGRE, Src: v4(c.Local), Dst: b.addr})
			b.hdr[10], b.hdr[11] = 0, 0
			b.sum = uint32(header.Checksum(b.hdr[:header.IPv4MinLen], 0))
			b.hdrLen = EncapLen
		} else {
			b.v6, b.addr6 = true, a.As16()
			header.IPv6(b.hdr[:]).Encode(header.IPv6Fields{NextHeader: header.ProtoGRE, HopLimit: 64, Src: c.Local6.As16(), Dst: b.addr6})
			b.hdrLen = encapLen6
		}
		w := bc.Weight
		if !bc.Healthy {
			w = 0
		}
		key := bc.Key
		if key == "" {
			key = a.String()
		}
		now, then := w, w
		switch bc.State {
		case Filling:
			then, transition = 0, true
		case Draining:
			now, transition = 0, true
		}
		mb[j] = maglev.Backend{Key: key, Weight: now}
		before[j] = maglev.Backend{Key: key, Weight: then}
	}
	if old != nil {
		svc.table, svc.prev = old.table, old.prev
		return svc, nil
	}
	t, err := maglev.New(mb, sc.TableSize, c.Seed)
	if err != nil {
		return svc, fmt.Errorf("service %q: %w", sc.Name, err)
	}
	svc.table = t
	if sc.SecondChance && transition {
		if svc.prev, err = maglev.New(before, sc.TableSize, c.Seed); err != nil {
			return svc, fmt.Errorf("service %q: the table before the transition: %w", sc.Name, err)
		}
	}
	return svc, nil
}

func (s *Snapshot) insertService(vip addr128, pp uint32, idx uint16) bool {
	for i := slotHash(vip, pp) & s.svcMask; ; i = (i + 1) & s.svcMask {
		sl := &s.svcSlots[i]
		switch {
		case sl.pp == 0:
			*sl = svcSlot{vip: vip, pp: pp, svc: &s.services[idx], idx: idx}
			s.services[idx].slot = sl
			return true
		case sl.vip == vip && sl.pp == pp:
			return false
		}
	}
}

// insertVIP records a VIP and the first services that serve it.
func (s *Snapshot) insertVIP(vip addr128, idx uint16, proto uint8) {
	for i := slotHash(vip, 0) & s.vipMask; ; i = (i + 1) & s.vipMask {
		sl := &s.vipSlots[i]
		if !sl.used {
			*sl = vipSlot{vip: vip, used: true, first: idx, firstTCP: noService, firstUDP: noService, firstAny: noService}
		} else if sl.vip != vip {
			continue
		}
		first := func(f *uint16) {
			if *f == noService {
				*f = idx
			}
		}
		switch proto {
		case header.ProtoTCP:
			first(&sl.firstTCP)
		case header.ProtoUDP:
			first(&sl.firstUDP)
		case 0:
			first(&sl.firstAny)
		}
		return
	}
}

// findVIP returns the VIP's slot, or nil when addr is not a VIP.
func (s *Snapshot) findVIP(addr addr128) *vipSlot {
	for i := slotHash(addr, 0) & s.vipMask; ; i = (i + 1) & s.vipMask {
		sl := &s.vipSlots[i]
		if !sl.used {
			return nil
		}
		if sl.vip == addr {
			return sl
		}
	}
}

// isVIP reports whether addr is the VIP of any service.
func (s *Snapshot) isVIP(addr addr128) bool { return s.findVIP(addr) != nil }

// defaultService is the VIP's service for a packet of protocol proto that
// has no port to match on (docs/verdicts.md §3.6): the first service with
// that protocol or "any", else the first service of the VIP.
func (s *Snapshot) defaultService(addr addr128, proto uint8) *svcSlot {
	v := s.findVIP(addr)
	if v == nil {
		return nil
	}
	idx := v.firstAny
	switch proto {
	case header.ProtoTCP:
		idx = min(v.firstTCP, v.firstAny) // noService is the largest value
	case header.ProtoUDP:
		idx = min(v.firstUDP, v.firstAny)
	}
	if idx == noService {
		idx = v.first
	}
	sc := &s.cfg.Services[idx]
	return s.findService(addrOf(sc.VIP.Unmap()), portProto(sc.Port, sc.Proto))
}

func (s *Snapshot) findService(vip addr128, pp uint32) *svcSlot {
	for i := slotHash(vip, pp) & s.svcMask; ; i = (i + 1) & s.svcMask {
		sl := &s.svcSlots[i]
		if sl.pp == 0 {
			return nil
		}
		if sl.pp == pp && sl.vip == vip {
			return sl
		}
	}
}

// lookupService finds the service for a destination, most specific first:
// (vip, port, proto), (vip, port, any), (vip, 0, proto), (vip, 0, any).
// The exact match is tried inline; the fallbacks live in lookupWild.
func (s *Snapshot) lookupService(vip addr128, port uint16, proto uint8) *svcSlot {
	pp := portProto(port, proto)
	if sl := &s.svcSlots[slotHash(vip, pp)&s.svcMask]; sl.pp == pp && sl.vip == vip {
		return sl
	}
	return s.lookupWild(vip, port, proto)
}

func (s *Snapshot) lookupWild(vip addr128, port uint16, proto uint8) *svcSlot {
	if sl := s.findService(vip, portProto(port, proto)); sl != nil {
		return sl
	}
	if sl := s.findService(vip, portProto(port, 0)); sl != nil {
		return sl
	}
	if sl := s.findService(vip, portProto(0, proto)); sl != nil {
		return sl
	}
	return s.findService(vip, portProto(0, 0))
}

// clone copies c deeply, so that a snapshot never shares slices with the
// caller, who may go on to change them.
func (c Config) clone() Config {
	c.Services = append([]ServiceConfig(nil), c.Services...)
	for i := range c.Services {
		c.Services[i].Backends = append([]BackendConfig(nil), c.Services[i].Backends...)
		c.Services[i].QUIC = append([]quiclb.Config(nil), c.Services[i].QUIC...)
	}
	return c
}

// Config returns the configuration the snapshot was built from.
func (s *Snapshot) Config() Config { return s.cfg }

// ServiceName returns the name of service i.
func (s *Snapshot) ServiceName(i uint16) string { return s.services[i].name }

// BackendAddr returns the address of backend j of service i.
func (s *Snapshot) BackendAddr(i, j uint16) netip.Addr {
	return s.cfg.Services[i].Backends[j].Address
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// fromNode reports whether a is one of the service's Remote backends
// (another Rail node).
func (svc *service) fromNode(a addr128) bool {
	for i := range svc.backends {
		b := &svc.backends[i]
		if !b.remote {
			continue
		}
		if b.v6 && addrOf(netip.AddrFrom16(b.addr6)) == a || !b.v6 && mapped4(b.addr) == a {
			return true
		}
	}
	return false
}
