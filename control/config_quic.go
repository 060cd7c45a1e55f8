package control

import (
	"encoding/hex"

	"github.com/rail-lb/rail/quiclb"
	"go.yaml.in/yaml/v3"
)

// quicKeys are the keys of a service's quic option (docs/QUIC.md).
var quicKeys = []string{"config_id", "server_id_length", "nonce_length", "key"}

// quic parses services[].quic: the QUIC-LB configuration a UDP service
// routes by (docs/QUIC.md), or a list of them with distinct config ids
// and one server id length (rotation: the first octet of each connection
// ID says which one made it).
func (p *parser) quic(n *yaml.Node, path string, s *Service) {
	n = deref(n)
	if s.Protocol != UDP {
		p.errf(n, path, "QUIC-LB routing needs protocol: udp (the service's protocol is %s)", s.Protocol)
	}
	type parsed struct {
		c    quiclb.Config
		node *yaml.Node
		path string
	}
	var all []parsed
	ok := true
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			p.errf(n, path, "an empty list: give one configuration (a mapping) or several")
			return
		}
		for i, e := range n.Content {
			e = deref(e)
			c, good := p.quicConfig(e, index(path, i))
			all, ok = append(all, parsed{c, e, index(path, i)}), ok && good
		}
	} else {
		c, good := p.quicConfig(n, path)
		all, ok = append(all, parsed{c, n, path}), good
	}
	if !ok {
		return
	}
	for i, a := range all[1:] {
		for _, b := range all[:i+1] {
			if a.c.ID == b.c.ID {
				p.errf(a.node, a.path+".config_id", "config id %d is already %s's (line %d)", a.c.ID, b.path, b.node.Line)
				ok = false
			}
		}
		if a.c.ServerIDLen != all[0].c.ServerIDLen {
			p.errf(a.node, a.path+".server_id_length", "%d, but %s has %d: the configurations share the backends' quic_server_id", a.c.ServerIDLen, all[0].path, all[0].c.ServerIDLen)
			ok = false
		}
	}
	if ok {
		for _, a := range all {
			s.QUIC = append(s.QUIC, a.c)
		}
	}
}

// quicConfig parses one QUIC-LB configuration. Lengths are in octets; the
// key, when given, is 16 octets in hex (32 digits) and selects the
// encrypted algorithm.
func (p *parser) quicConfig(n *yaml.Node, path string) (quiclb.Config, bool) {
	var c quiclb.Config
	f, ok := p.mapping(n, path, quicKeys)
	if !ok {
		return c, false
	}
	good := true
	need := func(key, example string) *yaml.Node {
		e := f[key]
		if e == nil {
			p.errf(n, join(path, key), "required (e.g. %s: %s)", key, example)
			good = false
		}
		return e
	}
	if e := need("config_id", "0"); e != nil {
		if v, ok := p.uint(e, path+".config_id", quiclb.MaxConfigID); ok {
			c.ID = uint8(v)
		} else {
			good = false
		}
	}
	sidNode, nonceNode := need("server_id_length", "2"), need("nonce_length", "14")
	if sidNode != nil {
		if v, ok := p.uint(sidNode, path+".server_id_length", quiclb.MaxServerIDLen); ok && v >= 1 {
			c.ServerIDLen = int(v)
		} else {
			if ok {
				p.errf(sidNode, path+".server_id_length", "must be at least 1")
			}
			good = false
		}
	}
	if nonceNode != nil {
		if v, ok := p.uint(nonceNode, path+".nonce_length", quiclb.MaxBlockLen); ok && v >= quiclb.MinNonceLen {
			c.NonceLen = int(v)
		} else {
			if ok {
				p.errf(nonceNode, path+".nonce_length", "must be at least %d", quiclb.MinNonceLen)
			}
			good = false
		}
	}
	if good && c.ServerIDLen+c.NonceLen > quiclb.MaxBlockLen {
		p.errf(nonceNode, path+".nonce_length", "server_id_length %d + nonce_length %d is more than %d (a QUIC v1 connection ID is at most 20 octets with the first)",
			c.ServerIDLen, c.NonceLen, quiclb.MaxBlockLen)
		good = false
	}
	if e := f["key"]; e != nil {
		if v, ok := p.str(e, path+".key"); ok {
			if k, err := hex.DecodeString(v); err != nil || len(k) != quiclb.KeyLen {
				p.errf(e, path+".key", "expected %d hex digits (a 16-octet AES-128 key)", 2*quiclb.KeyLen)
				good = false
			} else {
				c.Key = k
			}
		} else {
			good = false
		}
	}
	if good {
		if err := c.Validate(); err != nil { // every rule is checked above; this is a backstop
			p.errf(n, path, "%v", err)
			return c, false
		}
	}
	return c, good
}

// quicIDNode is a backend and its quic_server_id (nil: not given).
type quicIDNode struct{ backend, id *yaml.Node }

// quicServerIDs parses and checks each backend's quic_server_id against
// the service's quic option: the right length, no id twice. ids are by
// backend index.
func (p *parser) quicServerIDs(s *Service, ids []quicIDNode, path string) {
	seen := map[quiclb.ServerID]int{}
	for i, n := range ids {
		e := n.id
		if e == nil {
			if len(s.QUIC) > 0 {
				p.warnf(n.backend, index(path, i), "no quic_server_id: this backend's QUIC connections break when a client's address changes")
			}
			continue
		}
		bp := index(path, i) + ".quic_server_id"
		if len(s.QUIC) == 0 {
			p.errf(e, bp, "the service has no quic option (see docs/QUIC.md)")
			continue
		}
		v, ok := p.str(e, bp)
		if !ok {
			continue
		}
		id, err := quiclb.ParseServerID(v)
		if n := s.QUIC[0].ServerIDLen; err != nil || id.Len() != n {
			p.errf(e, bp, "expected %d hex digits (server_id_length %d), got %q", 2*n, n, v)
			continue
		}
		if j, dup := seen[id]; dup {
			p.errf(e, bp, "server id %v is already %s's (line %d)", id, index(path, j), s.Backends[j].Line)
			continue
		}
		seen[id] = i
		s.Backends[i].QUICServerID = id
	}
}
