package bench

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/rail-lb/rail/pipeline/header"
)

// Flow is the inner 5-tuple of a synthetic TCP packet.
type Flow struct {
	Src, Dst     netip.Addr
	Sport, Dport uint16
}

// GRESpec describes a GRE-in frame from a router to a Rail node.
type GRESpec struct {
	RouterMAC, NodeMAC header.MAC
	Router, Local      netip.Addr
	Flow               Flow
	Payload            int // TCP payload bytes
}

// FlowN returns the i-th of a family of distinct flows to vip:port: the
// client address and source port vary, as they do behind a real VIP.
func FlowN(i int, vip netip.Addr, port uint16) Flow {
	return Flow{
		Src:   netip.AddrFrom4([4]byte{198, 18, byte(i >> 14), byte(i >> 6)}),
		Dst:   vip,
		Sport: uint16(1024 + i&63*997%64512),
		Dport: port,
	}
}

// GREFrameLen is the frame length AppendGRE produces for payload bytes of TCP payload.
func GREFrameLen(payload int) int {
	return header.EthernetLen + 2*header.IPv4MinLen + header.GREMinLen + 20 + payload
}

// AppendGRE appends Ethernet | IPv4(router → local, GRE) | GRE | IPv4 | TCP
// | payload to b, with valid IPv4 checksums (the TCP checksum is left zero:
// nothing on the load balancer's path reads it).
func AppendGRE(b []byte, s GRESpec) ([]byte, error) {
	if !s.Router.Is4() || !s.Local.Is4() || !s.Flow.Src.Is4() || !s.Flow.Dst.Is4() {
		return b, fmt.Errorf("bench: IPv4 addresses only")
	}
	n := GREFrameLen(s.Payload)
	if n > 65535 {
		return b, fmt.Errorf("bench: frame of %d bytes is too large", n)
	}
	b, f := grow(b, n)
	innerLen := header.IPv4MinLen + 20 + s.Payload
	greOuter(f, s, innerLen, header.EtherTypeIPv4)
	header.IPv4(f[38:]).Encode(header.IPv4Fields{
		TotalLen: uint16(innerLen), ID: 1, FlagsFrag: header.IPv4FlagDF,
		TTL: 63, Protocol: header.ProtoTCP,
		Src: v4(s.Flow.Src), Dst: v4(s.Flow.Dst),
	})
	tcpHeader(f[58:], s.Flow)
	return b, nil
}

// grow appends n zero bytes to b and returns b and the new bytes.
func grow(b []byte, n int) ([]byte, []byte) {
	start := len(b)
	b = append(b, make([]byte, n)...)
	return b, b[start:]
}

// greOuter writes Ethernet | IPv4(router → local, GRE) | GRE(protocol) for
// an inner packet of innerLen bytes.
func greOuter(f []byte, s GRESpec, innerLen int, protocol uint16) {
	eth := header.Ethernet(f)
	eth.SetDst(s.NodeMAC)
	eth.SetSrc(s.RouterMAC)
	eth.SetType(header.EtherTypeIPv4)
	header.IPv4(f[14:]).Encode(header.IPv4Fields{
		TotalLen: uint16(header.IPv4MinLen + header.GREMinLen + innerLen),
		TTL:      64, Protocol: header.ProtoGRE,
		Src: v4(s.Router), Dst: v4(s.Local),
	})
	header.GRE(f[34:]).Encode(protocol)
}

// tcpHeader writes a 20-byte TCP header (ACK) for flow; the checksum is
// left zero: nothing on the load balancer's path reads it.
func tcpHeader(tcp []byte, flow Flow) {
	binary.BigEndian.PutUint16(tcp[0:], flow.Sport)
	binary.BigEndian.PutUint16(tcp[2:], flow.Dport)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	tcp[12] = 5 << 4
	tcp[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
}

func v4(a netip.Addr) uint32 {
	x := a.As4()
	return binary.BigEndian.Uint32(x[:])
}
