package pipeline

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/rail-lb/rail/maglev"
	"github.com/rail-lb/rail/pipeline/header"
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
}

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
}

// Snapshot is an immutable view of services, Maglev tables and backend
// health. Workers load the current one once per batch with an atomic load;
// control replaces it wholesale, never mutating one in use.
type Snapshot struct {
	local   uint32
	nextHop NextHopMode
	hopMAC  header.MAC
	k0, k1  uint64 // flow hash keys derived from the seed

	services []service
	svcSlots []svcSlot // open addressing, keyed by (vip, port, proto)
	vipSlots []uint32  // open addressing set of VIPs; 0 = empty
	svcMask  uint32
	vipMask  uint32

	cfg     Config
	rebuilt []string
}

type service struct {
	table    *maglev.Table
	backends []backend
	name     string
}

type backend struct {
	addr    uint32
	id      uint32
	healthy bool
	hasMAC  bool
	mac     header.MAC
	// hdr is the outer IPv4 header for this backend (total length, ID,
	// flags and checksum zero) followed by the 4-byte GRE header; sum is the
	// IPv4 part's ones' complement sum, so a packet needs only three
	// additions to finish the checksum.
	hdr [EncapLen]byte
	sum uint32
}

type svcSlot struct {
	key uint64 // svcKey(...); 0 = empty
	svc *service
	idx uint16
}

func svcKey(vip uint32, port uint16, proto uint8) uint64 {
	return uint64(vip)<<32 | uint64(port)<<16 | uint64(proto)<<8 | 1
}

func slotHash(k uint64) uint32 { return uint32((k * 0x9e3779b97f4a7c15) >> 32) }

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
	s := &Snapshot{
		local:   v4(c.Local),
		nextHop: c.NextHop,
		hopMAC:  c.NextHopMAC,
		k0:      splitmix64(c.Seed),
		cfg:     c.clone(),
	}
	s.k1 = splitmix64(s.k0)
	if len(c.Services) > 1<<15 {
		return nil, errors.New("too many services")
	}
	n := pow2(2 * len(c.Services))
	s.svcSlots = make([]svcSlot, n)
	s.vipSlots = make([]uint32, n)
	s.svcMask, s.vipMask = uint32(n-1), uint32(n-1)
	s.services = make([]service, len(c.Services))
	for i, sc := range c.Services {
		if !sc.VIP.Is4() {
			return nil, fmt.Errorf("service %q: VIP %v is not IPv4", sc.Name, sc.VIP)
		}
		vip := v4(sc.VIP)
		if vip == 0 || vip == s.local {
			return nil, fmt.Errorf("service %q: VIP %v cannot be used", sc.Name, sc.VIP)
		}
		var old *maglev.Table
		if p := prev.sameTable(sc, c.Seed); p != nil {
			old = p
		} else {
			s.rebuilt = append(s.rebuilt, sc.Name)
		}
		svc, err := buildService(s.local, sc, c.Seed, old)
		if err != nil {
			return nil, err
		}
		s.services[i] = svc
		if !s.insertService(svcKey(vip, sc.Port, sc.Proto), uint16(i)) {
			return nil, fmt.Errorf("service %q: duplicate (vip, port, protocol)", sc.Name)
		}
		s.insertVIP(vip)
	}
	return s, nil
}

// sameTable returns the Maglev table prev built for a service with exactly
// sc's table inputs, or nil.
func (prev *Snapshot) sameTable(sc ServiceConfig, seed uint64) *maglev.Table {
	if prev == nil || prev.cfg.Seed != seed {
		return nil
	}
	for i, ps := range prev.cfg.Services {
		if ps.Name != sc.Name || ps.TableSize != sc.TableSize || len(ps.Backends) != len(sc.Backends) {
			continue
		}
		for j, pb := range ps.Backends {
			b := sc.Backends[j]
			if pb.Address != b.Address || pb.Key != b.Key || pb.Weight != b.Weight || pb.Healthy != b.Healthy {
				return nil
			}
		}
		return prev.services[i].table
	}
	return nil
}

// Rebuilt names the services whose Maglev table this snapshot built (all
// of them for NewSnapshot; the changed ones for NewSnapshotFrom).
func (s *Snapshot) Rebuilt() []string { return s.rebuilt }

func buildService(local uint32, sc ServiceConfig, seed uint64, table *maglev.Table) (service, error) {
	svc := service{name: sc.Name, backends: make([]backend, len(sc.Backends))}
	mb := make([]maglev.Backend, len(sc.Backends))
	for j, bc := range sc.Backends {
		if !bc.Address.Is4() {
			return svc, fmt.Errorf("service %q: backend %v is not IPv4", sc.Name, bc.Address)
		}
		if bc.ID >= MaxBackendIDs {
			return svc, fmt.Errorf("service %q: backend %v: id %d out of range", sc.Name, bc.Address, bc.ID)
		}
		b := &svc.backends[j]
		b.addr, b.id, b.healthy = v4(bc.Address), bc.ID, bc.Healthy
		b.mac, b.hasMAC = bc.MAC, bc.HasMAC
		header.IPv4(b.hdr[:]).Encode(header.IPv4Fields{TTL: 64, Protocol: header.ProtoGRE, Src: local, Dst: b.addr})
		b.hdr[10], b.hdr[11] = 0, 0
		b.sum = uint32(header.Checksum(b.hdr[:header.IPv4MinLen], 0))
		header.GRE(b.hdr[header.IPv4MinLen:]).Encode(header.EtherTypeIPv4)
		w := bc.Weight
		if !bc.Healthy {
			w = 0
		}
		key := bc.Key
		if key == "" {
			key = bc.Address.String()
		}
		mb[j] = maglev.Backend{Key: key, Weight: w}
	}
	if table != nil {
		svc.table = table
		return svc, nil
	}
	t, err := maglev.New(mb, sc.TableSize, seed)
	if err != nil {
		return svc, fmt.Errorf("service %q: %w", sc.Name, err)
	}
	svc.table = t
	return svc, nil
}

func (s *Snapshot) insertService(k uint64, idx uint16) bool {
	for i := slotHash(k) & s.svcMask; ; i = (i + 1) & s.svcMask {
		switch s.svcSlots[i].key {
		case 0:
			s.svcSlots[i] = svcSlot{key: k, svc: &s.services[idx], idx: idx}
			return true
		case k:
			return false
		}
	}
}

func (s *Snapshot) insertVIP(vip uint32) {
	for i := slotHash(uint64(vip)) & s.vipMask; ; i = (i + 1) & s.vipMask {
		switch s.vipSlots[i] {
		case 0:
			s.vipSlots[i] = vip
			return
		case vip:
			return
		}
	}
}

// isVIP reports whether addr is the VIP of any service.
func (s *Snapshot) isVIP(addr uint32) bool {
	for i := slotHash(uint64(addr)) & s.vipMask; ; i = (i + 1) & s.vipMask {
		switch s.vipSlots[i] {
		case addr:
			return true
		case 0:
			return false
		}
	}
}

func (s *Snapshot) findService(k uint64) *svcSlot {
	for i := slotHash(k) & s.svcMask; ; i = (i + 1) & s.svcMask {
		switch sl := &s.svcSlots[i]; sl.key {
		case k:
			return sl
		case 0:
			return nil
		}
	}
}

// lookupService finds the service for a destination, most specific first:
// (vip, port, proto), (vip, port, any), (vip, 0, proto), (vip, 0, any).
// The exact match is tried inline; the fallbacks live in lookupWild.
func (s *Snapshot) lookupService(vip uint32, port uint16, proto uint8) *svcSlot {
	k := svcKey(vip, port, proto)
	if sl := &s.svcSlots[slotHash(k)&s.svcMask]; sl.key == k {
		return sl
	}
	return s.lookupWild(vip, port, proto)
}

func (s *Snapshot) lookupWild(vip uint32, port uint16, proto uint8) *svcSlot {
	if sl := s.findService(svcKey(vip, port, proto)); sl != nil {
		return sl
	}
	if sl := s.findService(svcKey(vip, port, 0)); sl != nil {
		return sl
	}
	if sl := s.findService(svcKey(vip, 0, proto)); sl != nil {
		return sl
	}
	return s.findService(svcKey(vip, 0, 0))
}

// clone copies c deeply, so that a snapshot never shares slices with the
// caller, who may go on to change them.
func (c Config) clone() Config {
	c.Services = append([]ServiceConfig(nil), c.Services...)
	for i := range c.Services {
		c.Services[i].Backends = append([]BackendConfig(nil), c.Services[i].Backends...)
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

func pow2(n int) int {
	p := 2
	for p < n {
		p <<= 1
	}
	return p
}
