package control

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rail-lb/rail/pipeline"
)

// BGP is the node's embedded BGP speaker (docs/FLEET.md): it announces each
// service's VIP as a host route while the node can serve it.
type BGP struct {
	// ASN is this node's AS number.
	ASN uint32
	// RouterID defaults to local_address.
	RouterID netip.Addr
	// ListenPort is the TCP port for incoming sessions; 0 means none
	// (raild connects to its peers).
	ListenPort uint16
	// DrainTime is how long a draining node announces its routes with the
	// GRACEFUL_SHUTDOWN community before it withdraws them.
	DrainTime time.Duration
	// Communities are added to every announcement (RFC 1997 a:b, as
	// a<<16|b).
	Communities []uint32
	// MED, when HasMED, is the MULTI_EXIT_DISC of every announcement.
	MED    uint32
	HasMED bool
	// NextHop and NextHop6 are the next hops announced for IPv4 and IPv6
	// VIPs: local_address and local_address6 unless given.
	NextHop, NextHop6 netip.Addr
	Peers             []Peer
}

// Peer is one BGP neighbour (normally the router in front of the node).
type Peer struct {
	Address netip.Addr
	ASN     uint32
	// Port is the peer's TCP port (179).
	Port uint16
	// HoldTime is the proposed hold time: 0 (no keepalives) or 3 s to
	// 65535 s.
	HoldTime time.Duration
	// Password is the TCP MD5 signature key (RFC 2385); empty for none.
	Password string
	// Passive: wait for the peer to connect instead of connecting.
	Passive bool
}

// BackendState is a backend's lifecycle state in the file.
type BackendState string

// Backend lifecycle states.
const (
	StateActive   BackendState = "active"
	StateFilling  BackendState = "filling"
	StateDraining BackendState = "draining"
)

// WhenDown is what a service does while it has no usable backend.
type WhenDown string

const (
	// DownWithdraw withdraws the VIP (unless another service on it serves).
	DownWithdraw WhenDown = "withdraw"
	// DownKeep keeps the VIP announced: its packets are dropped no_backend.
	DownKeep WhenDown = "keep"
	// DownForward keeps it announced and sends its packets, in GRE, to the
	// Rail nodes of ForwardTo (chosen by Maglev over them).
	DownForward WhenDown = "forward"
)

// GracefulShutdown is the well-known community of RFC 8326 (65535:0): a
// route that carries it is the least preferred, so the router moves traffic
// away before the route goes.
const GracefulShutdown = 0xFFFF0000

// Defaults of the bgp block.
const (
	DefaultDrainTime = 5 * time.Second
	DefaultHoldTime  = 90 * time.Second
	DefaultBGPPort   = 179
)

var (
	bgpKeys  = []string{"asn", "router_id", "listen_port", "drain_time", "communities", "med", "next_hop", "next_hop6", "peers"}
	peerKeys = []string{"address", "asn", "port", "hold_time", "password", "passive"}
)

func (p *parser) bgp(n *yaml.Node, c *Config) *BGP {
	f, ok := p.mapping(n, "bgp", bgpKeys)
	if !ok {
		return nil
	}
	b := &BGP{DrainTime: DefaultDrainTime, RouterID: c.LocalAddress, NextHop: c.LocalAddress, NextHop6: c.LocalAddress6}
	if e := f["asn"]; e != nil {
		b.ASN = p.asn(e, "bgp.asn")
	} else {
		p.errf(n, "bgp.asn", "required: this node's AS number (e.g. asn: 65010)")
	}
	if e := f["router_id"]; e != nil {
		if a, ok := p.addr(e, "bgp.router_id"); ok {
			if !a.Is4() {
				p.errf(e, "bgp.router_id", "%s is IPv6: a router id is an IPv4 address", a)
			} else {
				b.RouterID = a
			}
		}
	}
	if e := f["listen_port"]; e != nil {
		if v, ok := p.uint(e, "bgp.listen_port", math.MaxUint16); ok {
			b.ListenPort = uint16(v)
		}
	}
	if e := f["drain_time"]; e != nil {
		if e.Kind == yaml.ScalarNode && e.Value == "0" {
			b.DrainTime = 0
		} else if d, ok := p.duration(e, "bgp.drain_time"); ok {
			b.DrainTime = d
		}
	}
	if e := f["communities"]; e != nil {
		b.Communities = p.communities(e, "bgp.communities")
	}
	if e := f["med"]; e != nil {
		if v, ok := p.uint(e, "bgp.med", math.MaxUint32); ok {
			b.MED, b.HasMED = uint32(v), true
		}
	}
	if e := f["next_hop"]; e != nil {
		if a, ok := p.addr(e, "bgp.next_hop"); ok {
			if !a.Is4() {
				p.errf(e, "bgp.next_hop", "%s is IPv6: next_hop is for IPv4 VIPs (use next_hop6)", a)
			} else {
				b.NextHop = a
			}
		}
	}
	if e := f["next_hop6"]; e != nil {
		if a, ok := p.addr(e, "bgp.next_hop6"); ok {
			if !a.Is6() {
				p.errf(e, "bgp.next_hop6", "%s is IPv4: next_hop6 is for IPv6 VIPs (use next_hop)", a)
			} else {
				b.NextHop6 = a
			}
		}
	}
	if e := f["peers"]; e != nil {
		b.Peers = p.peers(e, c)
	}
	if len(b.Peers) == 0 {
		p.warnf(n, "bgp.peers", "no peers: nothing will be announced")
	}
	return b
}

func (p *parser) asn(n *yaml.Node, path string) uint32 {
	v, ok := p.uint(n, path, math.MaxUint32)
	switch {
	case !ok:
	case v == 0:
		p.errf(n, path, "AS 0 is reserved (RFC 7607): use your AS or a private one (64512-65534, 4200000000-4294967294)")
	case v == 23456:
		p.errf(n, path, "AS 23456 is AS_TRANS (RFC 6793), not a real AS")
	default:
		return uint32(v)
	}
	return 0
}

// communities accepts a list of "a:b" (each 0-65535).
func (p *parser) communities(n *yaml.Node, path string) []uint32 {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, path, `expected a list such as ["65010:100"], got %s`, describe(n))
		return nil
	}
	var out []uint32
	for i, e := range n.Content {
		ep := index(path, i)
		s, ok := p.str(e, ep)
		if !ok {
			continue
		}
		c, err := parseCommunity(s)
		if err != nil {
			p.errf(e, ep, "%q: %v", s, err)
			continue
		}
		out = append(out, c)
	}
	return out
}

func parseCommunity(s string) (uint32, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf(`a community is AS:value (e.g. "65010:100")`)
	}
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("both halves of a community are 0 to 65535")
	}
	return uint32(x)<<16 | uint32(y), nil
}

// FormatCommunity writes c as a:b.
func FormatCommunity(c uint32) string { return fmt.Sprintf("%d:%d", c>>16, c&0xffff) }

func (p *parser) peers(n *yaml.Node, c *Config) []Peer {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "bgp.peers", "expected a list of peers, got %s", describe(n))
		return nil
	}
	var out []Peer
	seen := map[netip.Addr]int{}
	for i, e := range n.Content {
		path := index("bgp.peers", i)
		f, ok := p.mapping(e, path, peerKeys)
		if !ok {
			continue
		}
		pr := Peer{Port: DefaultBGPPort, HoldTime: DefaultHoldTime}
		good := true
		if a := f["address"]; a != nil {
			if addr, ok := p.addr(a, path+".address"); ok {
				switch {
				case addr == c.LocalAddress || addr == c.LocalAddress6:
					p.errf(a, path+".address", "%s is this node's own address: a peer is another router", addr)
					good = false
				case addr.Is6() && !c.LocalAddress6.IsValid():
					p.errf(a, path+".address", "%s is IPv6: set local_address6 (the session's source)", addr)
					good = false
				default:
					if line, dup := seen[addr]; dup {
						p.errf(a, path+".address", "%s is already a peer (line %d)", addr, line)
						good = false
					}
					seen[addr] = a.Line
					pr.Address = addr
				}
			} else {
				good = false
			}
		} else {
			p.errf(e, path+".address", "required: the peer's address (e.g. address: 10.0.0.1)")
			good = false
		}
		if a := f["asn"]; a != nil {
			if pr.ASN = p.asn(a, path+".asn"); pr.ASN == 0 {
				good = false
			}
		} else {
			p.errf(e, path+".asn", "required: the peer's AS number (e.g. asn: 65000)")
			good = false
		}
		if a := f["port"]; a != nil {
			if v, ok := p.uint(a, path+".port", math.MaxUint16); ok && v > 0 {
				pr.Port = uint16(v)
			} else if ok {
				p.errf(a, path+".port", "must be 1 to 65535")
			}
		}
		if a := f["hold_time"]; a != nil {
			if a.Kind == yaml.ScalarNode && a.Value == "0" {
				pr.HoldTime = 0
			} else if d, ok := p.duration(a, path+".hold_time"); ok {
				switch {
				case d%time.Second != 0:
					p.errf(a, path+".hold_time", "%v: BGP hold times are whole seconds", d)
				case d < 3*time.Second || d > 65535*time.Second:
					p.errf(a, path+".hold_time", "%v: a hold time is 0 or 3s to 65535s (RFC 4271)", d)
				default:
					pr.HoldTime = d
				}
			}
		}
		if a := f["password"]; a != nil && !(a.Kind == yaml.ScalarNode && a.Value == "") {
			if s, ok := p.str(a, path+".password"); ok {
				if len(s) > 80 {
					p.errf(a, path+".password", "at most 80 bytes (the kernel's TCP MD5 key limit)")
				} else {
					pr.Password = s
				}
			}
		}
		if a := f["passive"]; a != nil {
			pr.Passive, _ = p.boolean(a, path+".passive")
		}
		if good {
			out = append(out, pr)
		}
	}
	return out
}

// whenDown parses a service's when_down and forward_to.
func (p *parser) whenDown(f map[string]*yaml.Node, n *yaml.Node, path string, s *Service, local locals) {
	s.WhenDown = DownWithdraw
	if e := f["when_down"]; e != nil {
		if v, ok := p.enum(e, path+".when_down", string(DownWithdraw), string(DownKeep), string(DownForward)); ok {
			s.WhenDown = WhenDown(v)
		}
	}
	if e := f["forward_to"]; e != nil {
		if e.Kind != yaml.SequenceNode {
			p.errf(e, path+".forward_to", "expected a list of Rail nodes' addresses, got %s", describe(e))
		} else {
			seen := map[netip.Addr]bool{}
			for i, a := range e.Content {
				ap := index(path+".forward_to", i)
				addr, ok := p.addr(a, ap)
				switch {
				case !ok:
				case local.is(addr):
					p.errf(a, ap, "%s is %s: forward_to names other Rail nodes", addr, local.name(addr))
				case addr == s.VIP:
					p.errf(a, ap, "%s is the service's own vip", addr)
				case addr.Is6() && !local.v6Given:
					p.errf(a, ap, "%s is IPv6: set local_address6 (the outer source towards IPv6 nodes)", addr)
				case seen[addr]:
					p.errf(a, ap, "%s is listed twice", addr)
				default:
					if msg := backendProblem(addr); msg != "" {
						p.errf(a, ap, "%s", msg)
						continue
					}
					seen[addr] = true
					s.ForwardTo = append(s.ForwardTo, addr)
				}
			}
		}
	}
	switch {
	case s.WhenDown == DownForward && len(s.ForwardTo) == 0 && f["forward_to"] == nil:
		p.errf(n, path+".forward_to", "required with when_down: forward (the other Rail nodes to send to, e.g. forward_to: [10.2.0.2])")
	case s.WhenDown != DownForward && f["forward_to"] != nil:
		p.warnf(f["forward_to"], path+".forward_to", "used only with when_down: forward")
	}
}

func (s BackendState) pipeline() pipeline.BackendState {
	switch s {
	case StateFilling:
		return pipeline.Filling
	case StateDraining:
		return pipeline.Draining
	}
	return pipeline.Active
}
