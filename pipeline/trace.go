package pipeline

import (
	"net/netip"

	"github.com/rail-lb/rail/maglev"
	"github.com/rail-lb/rail/pipeline/header"
)

// This file answers "what would the data path do with this flow, now?"
// for the admin API's trace (docs/API.md). Nothing here runs on the data
// path: it reads the snapshot, which is immutable, and peeks at the
// workers' connection tables without stopping them. It uses the data
// path's own pieces — flowHash, makeFlowKey, lookupService, the Maglev
// tables, svc.find — so its answer cannot drift from Process.

// TraceResult is what the snapshot decides for a flow, before any
// connection entry is taken into account.
type TraceResult struct {
	// Ours is false when the destination is no VIP: the kernel gets it.
	Ours bool
	// Service is the index of the service the flow matches in
	// Config().Services, or -1 when none does (the packet is passed).
	Service int
	// Hash is the flow hash Maglev and the connection table use.
	Hash uint64
	// Pick is the current table's backend (an index in the service's
	// backends), maglev.NoBackend when the table has none.
	Pick uint16
	// Transition is set when the service has second chance and some
	// backend is filling or draining: PrevPick is then the pick of the
	// table before the transition.
	Transition bool
	PrevPick   uint16
	// SYN is the verdict for a TCP SYN (or for a new UDP flow: one no
	// table knows): it always goes by Maglev.
	SYN Decision

	key flowKey
}

// Decision is a verdict for one packet of a traced flow.
type Decision struct {
	Verdict Verdict
	Reason  Reason
	// Backend is the backend's index in the service (Tx only).
	Backend uint16
	// FromEntry says the connection entry chose the backend, not Maglev.
	FromEntry bool
	// Second is the second hop put in the GRE key, maglev.NoBackend when
	// there is none.
	Second uint16
}

// ConnEntry is a copy of one connection entry.
type ConnEntry struct {
	// Backend is the backend's index in the current snapshot's service
	// (the entry's recorded index, followed to where its address is now),
	// maglev.NoBackend when the service no longer has that backend.
	Backend uint16
	// State is "new", "established" or "closing".
	State string
	// Deadline is when the entry expires, in seconds from now (negative:
	// expired, the data path ignores it; the slot is free for reuse).
	Deadline int64
	// Idle is the seconds since the flow's last packet, as the deadline
	// tells it (deadline − the state's timeout).
	Idle int64

	backend uint16 // as recorded
	tag     uint32
	state   uint8
}

// Expired reports whether the data path would ignore the entry.
func (e *ConnEntry) Expired() bool { return e.Deadline < 0 }

// Trace computes what the snapshot decides for the flow src → dst of
// protocol proto (6 or 17). Addresses of both families work; IPv4-mapped
// IPv6 addresses are IPv4.
func (s *Snapshot) Trace(src, dst netip.AddrPort, proto uint8) TraceResult {
	k := makeFlowKey(addrOf(src.Addr()), addrOf(dst.Addr()), uint32(src.Port())<<16|uint32(dst.Port()), proto)
	t := TraceResult{Service: -1, Pick: maglev.NoBackend, PrevPick: maglev.NoBackend, key: k}
	t.Hash = flowHash(k, s.k0, s.k1)
	t.Ours = s.isVIP(k.dst)
	if !t.Ours {
		t.SYN = Decision{Verdict: Pass, Reason: NotOurs, Backend: maglev.NoBackend, Second: maglev.NoBackend}
		return t
	}
	sl := s.lookupService(k.dst, dst.Port(), proto)
	if sl == nil {
		t.SYN = Decision{Verdict: Pass, Reason: NoService, Backend: maglev.NoBackend, Second: maglev.NoBackend}
		return t
	}
	t.Service = int(sl.idx)
	svc := sl.svc
	t.Pick = svc.table.Lookup(t.Hash)
	if svc.prev != nil {
		t.Transition = true
		t.PrevPick = svc.prev.Lookup(t.Hash)
	}
	t.SYN = s.decide(&t, maglev.NoBackend, false)
	return t
}

// MidConnection is the verdict for a packet in the middle of the flow
// (TCP: an ACK without SYN, FIN or RST) on a worker whose table holds e
// (nil: none): the entry's backend while it is there and healthy, else
// Maglev, as Process decides it.
func (s *Snapshot) MidConnection(t *TraceResult, e *ConnEntry) Decision {
	if t.Service < 0 {
		return t.SYN
	}
	if e != nil && !e.Expired() {
		svc := &s.services[t.Service]
		if bi := svc.find(e.backend, e.tag); bi != maglev.NoBackend && svc.backends[bi].healthy {
			return s.decide(t, bi, true)
		}
	}
	return s.decide(t, maglev.NoBackend, false)
}

// decide finishes a verdict for backend bi (maglev.NoBackend: Maglev's
// pick), as processGeneral and encapsulate do: no backend is a drop, a
// backend without a next-hop MAC under next_hop: kernel too, and with
// second chance the table before the transition may add a second hop.
// It does not know the packet's size (too_big) nor where it came from
// (a packet another Rail node forwarded is never forwarded again).
func (s *Snapshot) decide(t *TraceResult, bi uint16, fromEntry bool) Decision {
	svc := &s.services[t.Service]
	d := Decision{Verdict: Drop, Reason: NoBackend, Backend: maglev.NoBackend, Second: maglev.NoBackend}
	if bi == maglev.NoBackend {
		bi = svc.table.Lookup(t.Hash)
	}
	if int(bi) >= len(svc.backends) {
		return d
	}
	d.Backend, d.FromEntry = bi, fromEntry
	if s.nextHop == NextHopBackend && !svc.backends[bi].hasMAC {
		d.Reason = NoNeighbor
		return d
	}
	d.Verdict, d.Reason = Tx, ReasonNone
	if svc.prev != nil {
		if p := svc.prev.Lookup(t.Hash); int(p) < len(svc.backends) && p != bi {
			if pb := &svc.backends[p]; pb.healthy && !pb.v6 && !pb.remote && !svc.backends[bi].v6 {
				d.Second = p
			}
		}
	}
	return d
}

// Peek returns a copy of the flow's entry in the table, if there is one
// (expired entries included: see ConnEntry.Expired). now is the owning
// worker's clock (Worker.Clock).
//
// Peek runs on another goroutine than the worker that owns c, which goes
// on writing the entry meanwhile: the read is racy by design. It copies
// the entry field by field, so a torn read can at worst mix two versions
// of an entry (a deadline from one packet and a state from the next, or a
// key that no longer matches): harmless for a diagnostic, which is a
// moment's view anyway. The data path takes no lock for it and does not
// slow down.
func (c *Conntrack) Peek(t *TraceResult, now uint32) (ConnEntry, bool) {
	k := &t.key
	var m ctMeta
	found := false
	if k.is4() {
		k4 := k.to4()
		b := &c.buckets[uint32(t.Hash)&c.bucketMask]
		for i := range b {
			e := &b[i]
			if e.key.addrs == k4.addrs && e.key.rest == k4.rest {
				m.tag, m.deadline, m.backend, m.state = e.tag, e.deadline, e.backend, e.state
				found = m.deadline != 0
				break
			}
		}
	} else {
		b := &c.buckets6[uint32(t.Hash)&c.mask6]
		for i := range b {
			e := &b[i]
			if e.key.same(*k) {
				m.tag, m.deadline, m.backend, m.state = e.tag, e.deadline, e.backend, e.state
				found = m.deadline != 0
				break
			}
		}
	}
	if !found {
		return ConnEntry{}, false
	}
	e := ConnEntry{backend: m.backend, tag: m.tag, state: m.state, Backend: maglev.NoBackend}
	e.Deadline = int64(m.deadline) - int64(now)
	e.Idle = int64(now) - (int64(m.deadline) - int64(c.timeout(m.state, k.proto())))
	e.Idle = max(e.Idle, 0)
	switch m.state {
	case ctNew:
		e.State = "new"
	case ctEstablished:
		e.State = "established"
	case ctClosing:
		e.State = "closing"
	default:
		e.State = "unknown"
	}
	return e, true
}

// Resolve fills e.Backend: the entry's backend in the snapshot's service
// of t (it follows the backend's address, as Process does).
func (s *Snapshot) Resolve(t *TraceResult, e *ConnEntry) {
	e.Backend = maglev.NoBackend
	if t.Service >= 0 {
		e.Backend = s.services[t.Service].find(e.backend, e.tag)
	}
}

// Conntrack returns the worker's connection table (for Peek).
func (w *Worker) Conntrack() *Conntrack { return w.ct }

// Clock returns the worker's clock, in the seconds its connection
// entries' deadlines count. Like Peek, it reads a word the worker writes
// (once per batch) without synchronisation.
func (w *Worker) Clock() uint32 { return w.now }

// Peek is w.Conntrack().Peek with the worker's clock, the entry resolved
// against s.
func (w *Worker) Peek(s *Snapshot, t *TraceResult) (ConnEntry, bool) {
	e, ok := w.ct.Peek(t, w.Clock())
	if ok {
		s.Resolve(t, &e)
	}
	return e, ok
}

// TraceProto is the protocol number for "tcp" or "udp", or 0.
func TraceProto(name string) uint8 {
	switch name {
	case "tcp":
		return header.ProtoTCP
	case "udp":
		return header.ProtoUDP
	}
	return 0
}
