package bench

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/pipeline/header"
	"github.com/rail-lb/rail/quiclb"
)

// QUIC modes of railbench pipeline: plain UDP (no QUIC-LB option), and a
// QUIC-LB service with each algorithm.
var QUICModes = []string{"udp", "plaintext", "single-pass", "four-pass"}

// quicBenchKey is the draft's test-vector key; any 16 octets would do.
var quicBenchKey = []byte{0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80, 0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f}

// quicBenchConfig is the QUIC-LB configuration of a mode, nil for udp:
// 2-octet server ids, 14-octet nonces (single pass) or 6 (four passes).
func quicBenchConfig(mode string) (*quiclb.Config, error) {
	switch mode {
	case "udp":
		return nil, nil
	case "plaintext":
		return &quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 14}, nil
	case "single-pass":
		return &quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 14, Key: quicBenchKey}, nil
	case "four-pass":
		return &quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 6, Key: quicBenchKey}, nil
	}
	return nil, fmt.Errorf("bench: QUIC mode %q: use one of %v", mode, QUICModes)
}

func quicServerID(i int) quiclb.ServerID {
	id, _ := quiclb.MakeServerID([]byte{byte(i >> 8), byte(i)})
	return id
}

// QUICBenchConfig is one UDP service on the VIP's port 443 with backends
// backends, each with a QUIC-LB server id, and the mode's QUIC-LB option.
func QUICBenchConfig(backends int, mode string) (pipeline.Config, error) {
	qc, err := quicBenchConfig(mode)
	if err != nil {
		return pipeline.Config{}, err
	}
	c := BenchConfig(backends)
	s := &c.Services[0]
	s.Name, s.Port, s.Proto = "h3", 443, header.ProtoUDP
	if qc != nil {
		s.QUIC = []quiclb.Config{*qc}
		for i := range s.Backends {
			s.Backends[i].QUICServerID = quicServerID(i)
		}
	}
	return c, nil
}

// QUICFrameLen is the length of a GRE-in IPv4/UDP frame with payload
// octets of UDP payload (a QUIC packet).
func QUICFrameLen(payload int) int {
	return header.EthernetLen + 2*header.IPv4MinLen + header.GREMinLen + 8 + payload
}

// AppendGREUDP appends a GRE-in IPv4/UDP frame (spec's payload ignored)
// carrying payload as the UDP payload.
func AppendGREUDP(b []byte, s GRESpec, payload []byte) ([]byte, error) {
	if !s.Router.Is4() || !s.Local.Is4() || !s.Flow.Src.Is4() || !s.Flow.Dst.Is4() {
		return b, fmt.Errorf("bench: IPv4 addresses only")
	}
	n := QUICFrameLen(len(payload))
	if n > 65535 {
		return b, fmt.Errorf("bench: frame of %d bytes is too large", n)
	}
	b, f := grow(b, n)
	innerLen := header.IPv4MinLen + 8 + len(payload)
	greOuter(f, s, innerLen, header.EtherTypeIPv4)
	header.IPv4(f[38:]).Encode(header.IPv4Fields{
		TotalLen: uint16(innerLen), ID: 1, FlagsFrag: header.IPv4FlagDF,
		TTL: 63, Protocol: header.ProtoUDP, Src: v4(s.Flow.Src), Dst: v4(s.Flow.Dst),
	})
	udp := f[58:]
	binary.BigEndian.PutUint16(udp[0:], s.Flow.Sport)
	binary.BigEndian.PutUint16(udp[2:], s.Flow.Dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return b, nil
}

// NewQUICWorkload builds flows GRE-in IPv4/UDP frames to the VIP's port
// 443, each a QUIC short-header packet of payload octets whose connection
// ID names backend i mod backends in the mode's configuration (udp: the
// same bytes as single-pass, which a service without the option never
// reads). With fresh, every turn of a frame comes from a new source port:
// a tuple the connection table does not have, so each packet is decoded
// (a client that moved); without it the tuples repeat and the table
// answers, as for any established flow.
func NewQUICWorkload(flows, payload, backends int, mode string, fresh bool) (*Workload, error) {
	if flows <= 0 {
		return nil, fmt.Errorf("bench: --flows must be positive, got %d", flows)
	}
	qc, err := quicBenchConfig(mode)
	if err != nil {
		return nil, err
	}
	if qc == nil {
		qc, _ = quicBenchConfig("single-pass")
	}
	if payload < qc.CIDLen()+1 {
		return nil, fmt.Errorf("bench: a QUIC packet of %d octets cannot hold its %d-octet connection ID", payload, qc.CIDLen())
	}
	k, err := quiclb.NewCodec(*qc)
	if err != nil {
		return nil, err
	}
	cfg := BenchConfig(1)
	vip := cfg.Services[0].VIP
	w := &Workload{freshPorts: fresh}
	nonce := make([]byte, qc.NonceLen)
	for i := range flows {
		spec := GRESpec{
			RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
			Router: netip.MustParseAddr("10.0.0.1"), Local: cfg.Local, Flow: FlowN(i, vip, 443),
		}
		pkt := make([]byte, payload)
		pkt[0] = 0x40 // short header
		binary.BigEndian.PutUint32(nonce, uint32(i))
		if err := k.Encode(pkt[1:], quicServerID(i%backends), nonce); err != nil {
			return nil, err
		}
		f, err := AppendGREUDP(nil, spec, pkt)
		if err != nil {
			return nil, err
		}
		w.add(f)
	}
	return w, nil
}
