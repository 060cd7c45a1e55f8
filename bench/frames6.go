package bench

import (
	"fmt"

	"github.com/rail-lb/rail/pipeline/header"
)

// GRE6FrameLen is the frame length AppendGRE6 produces.
func GRE6FrameLen(payload int) int {
	return header.EthernetLen + header.IPv4MinLen + header.GREMinLen + header.IPv6Len + 20 + payload
}

// AppendGRE6 appends Ethernet | IPv4(router → local, GRE) | GRE(0x86DD) |
// IPv6 | TCP | payload: an IPv6 client flow (s.Flow with IPv6 addresses)
// tunnelled by an IPv4 router, as most fleets carry IPv6 VIPs today.
func AppendGRE6(b []byte, s GRESpec) ([]byte, error) {
	if !s.Router.Is4() || !s.Local.Is4() || !s.Flow.Src.Is6() || !s.Flow.Dst.Is6() {
		return b, fmt.Errorf("bench: IPv4 router and local address, IPv6 flow")
	}
	n := GRE6FrameLen(s.Payload)
	if n > 65535 {
		return b, fmt.Errorf("bench: frame of %d bytes is too large", n)
	}
	b, f := grow(b, n)
	payloadLen := 20 + s.Payload
	greOuter(f, s, header.IPv6Len+payloadLen, header.EtherTypeIPv6)
	header.IPv6(f[38:]).Encode(header.IPv6Fields{
		PayloadLen: uint16(payloadLen), NextHeader: header.ProtoTCP, HopLimit: 63,
		Src: s.Flow.Src.As16(), Dst: s.Flow.Dst.As16(),
	})
	tcpHeader(f[78:], s.Flow)
	return b, nil
}
