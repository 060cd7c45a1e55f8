package control

import (
	"fmt"
	"math"
	"net/netip"

	"go.yaml.in/yaml/v3"
)

// serviceKey is what a packet is matched on. Two services with the same key
// would make the match ambiguous.
type serviceKey struct {
	vip   netip.Addr
	port  uint16
	proto Protocol
}

// locals are the node's own addresses, which no vip or backend may be.
type locals struct {
	v4, v6 netip.Addr
	// v6Given: local_address6 is in the file (valid or not), so a
	// missing one is not reported again at every IPv6 backend.
	v6Given bool
}

func (l locals) is(a netip.Addr) bool { return a.IsValid() && (a == l.v4 || a == l.v6) }

// services parses the list and checks it as a whole: distinct names,
// distinct (vip, port, protocol), no backend that is also a VIP.
func (p *parser) services(n *yaml.Node, local locals) []Service {
	const path = "services"
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		p.warnf(n, path, "no services: every packet will be passed to the kernel")
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, path, "expected a list of services, got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.warnf(n, path, "no services: every packet will be passed to the kernel")
		return nil
	}
	out := make([]Service, 0, len(n.Content))
	names := make(map[string]int)
	keys := make(map[serviceKey]int)
	vips := make(map[netip.Addr]int)
	var addrs []backendAddr
	for i, e := range n.Content {
		e = deref(e)
		sp := index(path, i)
		s, v := p.service(e, sp, local)
		addrs = append(addrs, v.addrs...)
		if v.name {
			if j, dup := names[s.Name]; dup {
				p.errf(v.nameNode, sp+".name", "duplicate service name %q (also %s, line %d)", s.Name, index(path, j), out[j].Line)
			} else {
				names[s.Name] = i
			}
		}
		if v.key {
			k := serviceKey{s.VIP, s.Port, s.Protocol}
			if j, dup := keys[k]; dup {
				p.errf(e, sp, "same vip, port and protocol as %s (line %d): %s %s port %d", index(path, j), out[j].Line, s.VIP, s.Protocol, s.Port)
			} else {
				keys[k] = i
			}
		}
		if s.VIP.IsValid() {
			if _, ok := vips[s.VIP]; !ok {
				vips[s.VIP] = i
			}
		}
		out = append(out, s)
	}
	// A backend that is also a VIP would send the encapsulated packet
	// straight back to a rail node.
	for _, a := range addrs {
		if k, ok := vips[a.addr]; ok {
			p.errf(a.node, a.path, "%s is the vip of %s: a backend must not be a vip", a.addr, index(path, k))
		}
	}
	return out
}

// name says which of the node's addresses a is.
func (l locals) name(a netip.Addr) string {
	if a.Is6() {
		return "local_address6"
	}
	return "local_address"
}

// valid records which parts of a service parsed, for the cross checks.
type valid struct {
	name     bool
	nameNode *yaml.Node
	key      bool // vip, port and protocol
	addrs    []backendAddr
}

// backendAddr is a valid backend address and where it was found.
type backendAddr struct {
	addr netip.Addr
	node *yaml.Node
	path string
}

func (p *parser) service(n *yaml.Node, path string, local locals) (Service, valid) {
	s := Service{Line: n.Line, TableSize: DefaultTableSize}
	var v valid
	f, ok := p.mapping(n, path, serviceKeys)
	if !ok {
		return s, v
	}
	if e := f["name"]; e != nil {
		if name, ok := p.str(e, path+".name"); ok {
			if msg := checkName(name); msg != "" {
				p.errf(e, path+".name", "%s", msg)
			} else {
				s.Name, v.name, v.nameNode = name, true, e
			}
		}
	} else {
		p.errf(n, path+".name", "required (e.g. name: web)")
	}

	vipOK, portOK, protoOK := false, false, false
	if e := f["vip"]; e != nil {
		if a, ok := p.addr(e, path+".vip"); ok {
			if local.is(a) {
				p.errf(e, path+".vip", "%s is %s: a vip must be an address of its own", a, local.name(a))
			} else {
				s.VIP, vipOK = a, true
			}
		}
	} else {
		p.errf(n, path+".vip", "required (e.g. vip: 192.0.2.10)")
	}
	if e := f["port"]; e != nil {
		if port, ok := p.uint(e, path+".port", math.MaxUint16); ok {
			s.Port, portOK = uint16(port), true
		}
	} else {
		p.errf(n, path+".port", "required (e.g. port: 80; 0 means every port)")
	}
	if e := f["protocol"]; e != nil {
		if proto, ok := p.enum(e, path+".protocol", "tcp", "udp", "any"); ok {
			s.Protocol, protoOK = map[string]Protocol{"tcp": TCP, "udp": UDP, "any": Any}[proto], true
		}
	} else {
		p.errf(n, path+".protocol", "required (tcp, udp or any)")
	}
	v.key = vipOK && portOK && protoOK

	tableNode := n
	tableOK := true
	if e := f["table_size"]; e != nil {
		tableNode = e
		tableOK = false
		if size, ok := p.uint(e, path+".table_size", MaxTableSize); ok {
			switch {
			case size < 2:
				p.errf(e, path+".table_size", "%d is not prime (try %d)", size, DefaultTableSize)
			case !isPrime(size):
				p.errf(e, path+".table_size", "%d is not prime (try %d)", size, primeNear(size))
			default:
				s.TableSize, tableOK = uint32(size), true
			}
		}
	}

	if e := f["health"]; e != nil {
		s.Health = p.health(e, path+".health", s.Port, portOK)
	}
	p.whenDown(f, n, path, &s, local)
	if e := f["second_chance"]; e != nil {
		s.SecondChance, _ = p.boolean(e, path+".second_chance")
	}
	if e := f["quic"]; e != nil {
		p.quic(e, path+".quic", &s)
	}
	var quicIDs []quicIDNode
	if e := f["backends"]; e != nil && !(e.Kind == yaml.ScalarNode && e.ShortTag() == "!!null") {
		s.Backends, v.addrs, quicIDs = p.backends(e, path+".backends", local, s.VIP)
	}
	p.quicServerIDs(&s, quicIDs, path+".backends")
	switch nb := uint64(len(s.Backends)); {
	case nb == 0:
		p.warnf(n, path+".backends", "no backends: every packet will be dropped (no_backend)")
	case !tableOK:
	case uint64(s.TableSize) < nb:
		p.errf(tableNode, path+".table_size", "%d is smaller than the number of backends (%d); try %d", s.TableSize, nb, primeNear(100*nb))
	case uint64(s.TableSize) < 100*nb:
		p.warnf(tableNode, path+".table_size", "%d is small for %d backends: Maglev spreads flows evenly only when table_size ≥ 100 × backends (try %d)", s.TableSize, nb, primeNear(100*nb))
	}
	if len(s.Backends) > 0 {
		drained := true
		for _, b := range s.Backends {
			if b.Weight > 0 {
				drained = false
				break
			}
		}
		if drained {
			p.warnf(n, path+".backends", "every backend has weight 0: new flows will be dropped (no_backend)")
		}
	}
	return s, v
}

// backends parses a service's pool: distinct addresses and distinct Maglev
// keys. It also returns where each valid address is, for the cross checks,
// and each backend's quic_server_id node, for the service's quic option.
func (p *parser) backends(n *yaml.Node, path string, local locals, vip netip.Addr) ([]Backend, []backendAddr, []quicIDNode) {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, path, "expected a list of backends, got %s", describe(n))
		return nil, nil, nil
	}
	var quicIDs []quicIDNode
	out := make([]Backend, 0, len(n.Content))
	var found []backendAddr
	type seen struct{ i, line int }
	addrs := make(map[netip.Addr]seen)
	keys := make(map[string]seen)
	for i, e := range n.Content {
		e = deref(e)
		bp := index(path, i)
		if p.backendsLeft--; p.backendsLeft < 0 {
			if p.backendsLeft == -1 {
				// Not subject to maxProblems: this one explains the rest.
				p.probs = append(p.probs, Problem{File: p.file, Line: e.Line, Column: e.Column, Path: bp,
					Msg: fmt.Sprintf("too many backends (at most %d in all services together)", MaxBackends)})
			}
			break
		}
		b := Backend{Line: e.Line, Weight: DefaultWeight}
		f, ok := p.mapping(e, bp, backendKeys)
		if !ok {
			continue
		}
		addrOK := false
		if a := f["address"]; a != nil {
			if addr, ok := p.addr(a, bp+".address"); ok {
				switch msg := backendProblem(addr); {
				case msg != "":
					p.errf(a, bp+".address", "%s", msg)
				case local.is(addr):
					p.errf(a, bp+".address", "%s is %s: a backend must be another host", addr, local.name(addr))
				case addr.Is6() && !local.v6Given:
					p.errf(a, bp+".address", "%s is IPv6: set local_address6 (this node's IPv6 address, the outer source towards IPv6 backends)", addr)
				case addr == vip:
					p.errf(a, bp+".address", "%s is the service's own vip", addr)
				default:
					if j, dup := addrs[addr]; dup {
						p.errf(a, bp+".address", "%s is already %s (line %d)", addr, index(path, j.i), j.line)
					} else {
						addrs[addr] = seen{i, e.Line}
						b.Address, addrOK = addr, true
						found = append(found, backendAddr{addr, a, bp + ".address"})
					}
				}
			}
		} else {
			p.errf(e, bp+".address", "required (e.g. address: 10.1.0.11)")
		}
		if w := f["weight"]; w != nil {
			if weight, ok := p.uint(w, bp+".weight", math.MaxUint32); ok {
				b.Weight = uint32(weight)
			}
		}
		b.State = StateActive
		if st := f["state"]; st != nil {
			if v, ok := p.enum(st, bp+".state", string(StateActive), string(StateFilling), string(StateDraining)); ok {
				b.State = BackendState(v)
			}
		}
		nameOK := true
		keyNode := f["address"]
		if nm := f["name"]; nm != nil {
			keyNode = nm
			nameOK = false
			if name, ok := p.str(nm, bp+".name"); ok {
				if msg := checkName(name); msg != "" {
					p.errf(nm, bp+".name", "%s", msg)
				} else {
					b.Name, nameOK = name, true
				}
			}
		}
		// The Maglev key must be unique too: a name may collide with
		// another backend's name or with an unnamed backend's address.
		if nameOK && (b.Name != "" || addrOK) {
			key := b.Key()
			if j, dup := keys[key]; dup {
				what := "name"
				if b.Name == "" {
					what = "address"
				}
				p.errf(keyNode, bp+"."+what, "Maglev key %q is already used by %s (line %d)", key, index(path, j.i), j.line)
			} else {
				keys[key] = seen{i, e.Line}
			}
		}
		out = append(out, b)
		quicIDs = append(quicIDs, quicIDNode{e, f["quic_server_id"]})
	}
	return out, found, quicIDs
}
