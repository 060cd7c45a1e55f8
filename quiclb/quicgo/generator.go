package quicgo

import (
	"crypto/rand"
	"fmt"

	"github.com/quic-go/quic-go"
	"github.com/rail-lb/rail/quiclb"
)

// Generator issues QUIC-LB connection IDs for one server id. Every ID has
// a fresh random nonce, so no two are linkable. It is safe for concurrent
// use.
type Generator struct {
	codec *quiclb.Codec
	sid   quiclb.ServerID
	nonce int
}

var _ quic.ConnectionIDGenerator = (*Generator)(nil)

// NewGenerator checks the configuration and that sid has its server id
// length.
func NewGenerator(c quiclb.Config, sid quiclb.ServerID) (*Generator, error) {
	k, err := quiclb.NewCodec(c)
	if err != nil {
		return nil, err
	}
	if sid.Len() != c.ServerIDLen {
		return nil, fmt.Errorf("server id %v has %d octets, the configuration %d", sid, sid.Len(), c.ServerIDLen)
	}
	return &Generator{codec: k, sid: sid, nonce: c.NonceLen}, nil
}

// GenerateConnectionID makes a new connection ID.
func (g *Generator) GenerateConnectionID() (quic.ConnectionID, error) {
	var nonce [quiclb.MaxBlockLen]byte
	var cid [quiclb.MaxCIDLen]byte
	if _, err := rand.Read(nonce[:g.nonce]); err != nil {
		return quic.ConnectionID{}, err
	}
	if err := g.codec.Encode(cid[:], g.sid, nonce[:g.nonce]); err != nil {
		return quic.ConnectionID{}, err
	}
	return quic.ConnectionIDFromBytes(cid[:g.codec.CIDLen()]), nil
}

// ConnectionIDLen is the length of every ID it makes.
func (g *Generator) ConnectionIDLen() int { return g.codec.CIDLen() }
