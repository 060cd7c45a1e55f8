package control

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/rail-lb/rail/maglev"
	"github.com/rail-lb/rail/pipeline"
)

// NoServiceVerdict is the trace's answer for a flow no service matches.
const NoServiceVerdict = "no service: the packet is passed to the kernel"

// TraceView is GET /v1/trace: what this node does with one flow, now,
// computed from the live snapshot and the workers' connection tables.
type TraceView struct {
	Src        string `json:"src"`
	Dst        string `json:"dst"`
	Protocol   string `json:"protocol"`
	Generation uint64 `json:"generation"`
	// Service is the service the flow matches; nil: none (see Verdict).
	Service *TraceService `json:"service"`
	// Verdict is NoServiceVerdict when no service matches.
	Verdict string `json:"verdict,omitempty"`
	// Hash is the flow hash (hex) Maglev and the connection table use.
	Hash string `json:"hash,omitempty"`
	// Maglev is the current table's pick; nil when it has no backend.
	Maglev *TraceBackend `json:"maglev,omitempty"`
	// Previous is the pick of the table before the transition (second
	// chance with backends filling or draining) when it differs.
	Previous *TraceBackend `json:"previous,omitempty"`
	// Connections are the workers' entries for the flow (one per worker
	// that has one).
	Connections []TraceConnection `json:"connections"`
	// SYN is the verdict for a TCP SYN or a new flow (Maglev's pick).
	SYN TraceVerdict `json:"syn"`
	// Mid is the verdict for a mid-connection packet: the entry's backend
	// when there is one and it is usable, else Maglev's pick (or, with a
	// routed QUIC connection ID, its backend).
	Mid TraceVerdict `json:"mid_connection"`
	// QUIC is what QUIC-LB makes of the connection ID the trace was asked
	// about (dcid=HEX); nil when none was given. With a routed ID, SYN is
	// the verdict for a packet with it on a tuple no entry has (a new
	// connection's Handshake, or a client that moved).
	QUIC *TraceQUIC `json:"quic,omitempty"`
}

// TraceQUIC is the QUIC-LB view of one destination connection ID
// (docs/QUIC.md).
type TraceQUIC struct {
	DCID string `json:"dcid"`
	// Configured: the service has a quic option; nothing else is set
	// without one.
	Configured bool   `json:"configured"`
	ConfigID   uint8  `json:"config_id"`
	ServerID   string `json:"server_id,omitempty"` // hex; empty: the ID does not decode
	// Backend is the backend with that server id, nil when none has it.
	Backend *TraceBackend `json:"backend,omitempty"`
	// Routed: packets with this ID on a new tuple go to Backend; Why says
	// why not otherwise (they go by the 5-tuple).
	Routed bool   `json:"routed"`
	Why    string `json:"why,omitempty"`
}

// ParseDCID reads the trace's dcid: a connection ID in hex (at most 20
// octets); empty is none.
func ParseDCID(v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) == 0 || len(b) > 20 {
		return nil, badRequest(http.StatusBadRequest, "dcid: %q is not a connection ID in hex (1 to 20 octets, e.g. dcid=4a0b1c…)", v)
	}
	return b, nil
}

// TraceService is the service a traced flow matches.
type TraceService struct {
	Name     string `json:"name"`
	VIP      string `json:"vip"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
	// Transition: second chance is on and some backend is filling or
	// draining, so packets may carry a second hop.
	Transition bool `json:"transition"`
}

// TraceBackend is a backend as the trace shows it.
type TraceBackend struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Healthy bool   `json:"healthy"`
	Weight  uint32 `json:"weight"`
	State   string `json:"state"`
	// Remote: another Rail node standing in (when_down: forward).
	Remote bool `json:"remote,omitempty"`
	// NextHop is the resolved next-hop MAC (next_hop: kernel); empty
	// there means unresolved: packets to it are dropped (no_neighbor).
	NextHop string `json:"next_hop,omitempty"`
}

// TraceConnection is one worker's connection entry for the flow.
type TraceConnection struct {
	Queue int `json:"queue"`
	CPU   int `json:"cpu"`
	// Backend is nil when the service no longer has the entry's backend.
	Backend *TraceBackend `json:"backend"`
	State   string        `json:"state"` // new, established, closing
	// IdleSeconds is the time since the flow's last packet on that
	// worker; DeadlineSeconds when the entry expires, from now (≤ 0:
	// expired, ignored by the data path).
	IdleSeconds     int64 `json:"idle_seconds"`
	DeadlineSeconds int64 `json:"deadline_seconds"`
	Expired         bool  `json:"expired,omitempty"`
}

// TraceVerdict is what the pipeline would do with one packet of the flow.
type TraceVerdict struct {
	Verdict string        `json:"verdict"` // tx, pass, drop
	Reason  string        `json:"reason,omitempty"`
	Backend *TraceBackend `json:"backend,omitempty"`
	// By says what chose the backend: "maglev" or "connection entry on
	// queue N".
	By        string        `json:"by,omitempty"`
	SecondHop *TraceBackend `json:"second_hop,omitempty"`
}

// ParseTrace checks a trace's query: src and dst as IP:PORT of one
// family, proto tcp or udp.
func ParseTrace(src, dst, proto string) (netip.AddrPort, netip.AddrPort, uint8, error) {
	parse := func(name, v string) (netip.AddrPort, error) {
		ap, err := netip.ParseAddrPort(v)
		if err != nil {
			return ap, badRequest(http.StatusBadRequest, "%s: %q is not IP:PORT (e.g. %s=198.51.100.7:40000, [2001:db8::7]:40000 for IPv6)", name, v, name)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	s, err := parse("src", src)
	if err != nil {
		return s, s, 0, err
	}
	d, err := parse("dst", dst)
	if err != nil {
		return s, d, 0, err
	}
	p := pipeline.TraceProto(proto)
	if p == 0 {
		return s, d, 0, badRequest(http.StatusBadRequest, "proto: %q is not tcp or udp", proto)
	}
	if s.Addr().Is4() != d.Addr().Is4() {
		return s, d, 0, badRequest(http.StatusBadRequest, "src %v and dst %v are of different address families", s.Addr(), d.Addr())
	}
	return s, d, p, nil
}

// Trace says what this node does with the flow src → dst, now: the
// service, the Maglev pick (and the one before a transition), each
// worker's connection entry and the verdicts for a SYN and a
// mid-connection packet. The workers go on meanwhile: the entries are a
// moment's view, read without stopping them.
//
// With dcid (nil: none), the trace also decodes that QUIC destination
// connection ID for the service's QUIC-LB configuration.
func (s *State) Trace(src, dst netip.AddrPort, proto uint8, dcid []byte) TraceView {
	s.mu.Lock()
	snap := s.Snap.Load()
	gen := s.gen.Load()
	qs := s.queues
	names := map[backendRef]string{} // (service, address) → name
	for _, sv := range s.svcs {
		for _, b := range sv.Backends {
			if b.Name != "" {
				names[backendRef{sv.Name, b.Address.String()}] = b.Name
			}
		}
	}
	s.mu.Unlock()

	v := TraceView{Src: src.String(), Dst: dst.String(), Protocol: Protocol(proto).String(), Generation: gen, Connections: []TraceConnection{}}
	tr := snap.Trace(src, dst, proto)
	if tr.Service < 0 {
		v.Verdict = NoServiceVerdict
		v.SYN = TraceVerdict{Verdict: tr.SYN.Verdict.String(), Reason: tr.SYN.Reason.String()}
		v.Mid = v.SYN
		return v
	}
	cfg := snap.Config()
	sc := cfg.Services[tr.Service]
	backend := func(j uint16) *TraceBackend {
		if int(j) >= len(sc.Backends) {
			return nil
		}
		b := sc.Backends[j]
		tb := &TraceBackend{Address: b.Address.String(), Name: names[backendRef{sc.Name, b.Address.String()}],
			Healthy: b.Healthy, Weight: b.Weight, State: stateName(b.State), Remote: b.Remote}
		if cfg.NextHop == pipeline.NextHopBackend && b.HasMAC {
			m := b.MAC
			tb.NextHop = fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
		}
		return tb
	}
	verdict := func(d pipeline.Decision, by string) TraceVerdict {
		tv := TraceVerdict{Verdict: d.Verdict.String()}
		if d.Reason != pipeline.ReasonNone {
			tv.Reason = d.Reason.String()
		}
		if d.Backend != maglev.NoBackend {
			tv.Backend, tv.By = backend(d.Backend), by
		}
		if d.Second != maglev.NoBackend {
			tv.SecondHop = backend(d.Second)
		}
		return tv
	}
	v.Service = &TraceService{Name: sc.Name, VIP: sc.VIP.String(), Port: sc.Port, Protocol: Protocol(sc.Proto).String(), Transition: tr.Transition}
	v.Hash = fmt.Sprintf("%016x", tr.Hash)
	v.Maglev = backend(tr.Pick)
	if tr.Transition && tr.PrevPick != tr.Pick {
		v.Previous = backend(tr.PrevPick)
	}
	v.SYN = verdict(tr.SYN, "maglev")
	if dcid != nil {
		qt := snap.TraceQUIC(&tr, dcid)
		v.QUIC = &TraceQUIC{DCID: hex.EncodeToString(dcid), Configured: qt.Configured, ConfigID: qt.ConfigID, Routed: qt.Routed, Why: qt.Why}
		if qt.Decoded {
			v.QUIC.ServerID = qt.ServerID.String()
		}
		if qt.Backend != maglev.NoBackend {
			v.QUIC.Backend = backend(qt.Backend)
		}
		if qt.Routed {
			v.SYN = verdict(snap.QUICNew(&tr, qt), "QUIC-LB server id "+qt.ServerID.String())
		}
	}
	v.Mid = v.SYN
	midSet := false
	for _, q := range qs {
		if q.Worker == nil {
			continue
		}
		e, ok := q.Worker.Peek(snap, &tr)
		if !ok {
			continue
		}
		v.Connections = append(v.Connections, TraceConnection{Queue: q.Queue, CPU: q.CPU, Backend: backend(e.Backend), State: e.State,
			IdleSeconds: e.Idle, DeadlineSeconds: e.Deadline, Expired: e.Expired()})
		if !midSet && !e.Expired() {
			// The flow's packets land on one queue (RSS): the first live
			// entry is the one that decides.
			d := snap.MidConnection(&tr, &e)
			by := "maglev"
			if d.FromEntry {
				by = fmt.Sprintf("connection entry on queue %d", q.Queue)
			}
			v.Mid, midSet = verdict(d, by), true
		}
	}
	return v
}

func stateName(st pipeline.BackendState) string {
	switch st {
	case pipeline.Filling:
		return string(StateFilling)
	case pipeline.Draining:
		return string(StateDraining)
	}
	return string(StateActive)
}
