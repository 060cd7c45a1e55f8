package rings

import (
	"encoding/binary"
	"net/netip"
)

// Hand-built frames for the verdict table (docs/verdicts.md).

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0xb}

	router  = [4]byte{10, 0, 0, 1}
	local   = [4]byte{10, 0, 0, 2}
	other   = [4]byte{10, 0, 0, 9}
	client  = [4]byte{198, 51, 100, 7}
	vipWeb  = [4]byte{192, 0, 2, 10} // tcp/80
	vipAll  = [4]byte{192, 0, 2, 20} // any port, any protocol
	vipUDP  = [4]byte{192, 0, 2, 30} // udp, any port
	vipDNS  = [4]byte{192, 0, 2, 40} // port 53, any protocol
	vipDead = [4]byte{192, 0, 2, 50} // tcp/443, a service whose backends are all down
)

func testLocals() []netip.Addr { return []netip.Addr{netip.AddrFrom4(local)} }

func testServices() []ServiceKey {
	return []ServiceKey{
		{VIP: netip.AddrFrom4(vipWeb), Port: 80, Proto: 6},
		{VIP: netip.AddrFrom4(vipAll)},
		{VIP: netip.AddrFrom4(vipUDP), Proto: 17},
		{VIP: netip.AddrFrom4(vipDNS), Port: 53},
		{VIP: netip.AddrFrom4(vipDead), Port: 443, Proto: 6},
	}
}

func ether(etype uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], macA[:])
	copy(f[6:12], macB[:])
	binary.BigEndian.PutUint16(f[12:14], etype)
	return append(f, payload...)
}

// ip4 builds an IPv4 header + payload; edit, if set, may change the header
// (and the slice) before the checksum is computed.
func ip4(src, dst [4]byte, proto uint8, payload []byte, edit func(h []byte)) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(20+len(payload)))
	h[6] = 0x40 // DF
	h[8] = 64
	h[9] = proto
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	p := append(h, payload...)
	if edit != nil {
		edit(p)
	}
	var sum uint32
	for i := 0; i+1 < int(p[0]&0xf)*4 && i+1 < len(p); i += 2 {
		if i != 10 {
			sum += uint32(binary.BigEndian.Uint16(p[i:]))
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if len(p) >= 12 {
		binary.BigEndian.PutUint16(p[10:12], ^uint16(sum))
	}
	return p
}

func l4(sport, dport uint16, n int) []byte {
	b := make([]byte, 4+n)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	for i := 4; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func tcp(dst [4]byte, dport uint16) []byte {
	return ip4(client, dst, 6, l4(40000, dport, 16), nil)
}

func greHdr(flags, proto uint16, payload []byte) []byte {
	n := 4
	for _, bit := range []uint16{0x8000, 0x2000, 0x1000} {
		if flags&bit != 0 {
			n += 4
		}
	}
	g := make([]byte, n, n+len(payload))
	binary.BigEndian.PutUint16(g[0:], flags)
	binary.BigEndian.PutUint16(g[2:], proto)
	return append(g, payload...)
}

func greIn(inner []byte) []byte {
	return ether(0x0800, ip4(router, local, 47, greHdr(0, 0x0800, inner), nil))
}

func set16(off int, v uint16) func([]byte) {
	return func(h []byte) { binary.BigEndian.PutUint16(h[off:], v) }
}

type verdictCase struct {
	name     string // verdict/reason: what it is
	frame    []byte
	redirect bool // the XDP answer: every tx and drop row is ours
}

func verdictCases() []verdictCase {
	arp := ether(0x0806, make([]byte, 28))
	ipv6 := ether(0x86dd, make([]byte, 60))
	pad := func(f []byte, n int) []byte { return append(f, make([]byte, n)...) }
	outerEdit := func(edit func([]byte)) []byte {
		return ether(0x0800, ip4(router, local, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), edit))
	}
	innerEdit := func(dst [4]byte, proto uint8, payload []byte, edit func([]byte)) []byte {
		return greIn(ip4(client, dst, proto, payload, edit))
	}
	plainEdit := func(dst [4]byte, proto uint8, payload []byte, edit func([]byte)) []byte {
		return ether(0x0800, ip4(client, dst, proto, payload, edit))
	}
	return []verdictCase{
		// Row 1.
		{"pass/not_ip: empty frame", []byte{}, false},
		{"pass/not_ip: 13 bytes", greIn(tcp(vipWeb, 80))[:13], false},
		{"pass/not_ip: ARP", arp, false},
		{"pass/not_ip: IPv6", ipv6, false},
		{"pass/not_ip: VLAN-tagged", ether(0x8100, tcp(vipWeb, 80)), false},
		// Row 2.
		{"pass/not_ours: IPv4 ethertype, 33 bytes", greIn(tcp(vipWeb, 80))[:33], false},
		{"pass/not_ours: IPv4 ethertype, 14 bytes", greIn(tcp(vipWeb, 80))[:14], false},
		// Row 5, otherwise.
		{"pass/not_ours: TCP to another host", plainEdit(other, 6, l4(1, 22, 8), nil), false},
		{"pass/not_ours: ICMP to the local address", plainEdit(local, 1, make([]byte, 16), nil), false},
		{"pass/not_ours: TCP to the local address (SSH)", plainEdit(local, 6, l4(1, 22, 8), nil), false},
		{"pass/not_ours: GRE to another address", ether(0x0800, ip4(router, other, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), nil)), false},
		// Row 4, outer header.
		{"drop/malformed: outer version 6", outerEdit(func(h []byte) { h[0] = 0x65 }), true},
		{"drop/malformed: outer IHL 4", outerEdit(func(h []byte) { h[0] = 0x44 }), true},
		{"drop/malformed: outer IHL past frame", ether(0x0800, ip4(router, local, 47, greHdr(0, 0x0800, nil), func(h []byte) { h[0] = 0x4f })), true},
		{"drop/malformed: outer total length < IHL*4+4", outerEdit(set16(2, 23)), true},
		{"drop/malformed: outer total length past frame", outerEdit(set16(2, 1000)), true},
		{"drop/fragment: outer MF", outerEdit(set16(6, 0x2000)), true},
		{"drop/fragment: outer offset", outerEdit(set16(6, 0x0010)), true},
		{"drop/unsupported: GRE routing bit", greInFlags(0x4000, 0x0800), true},
		{"drop/unsupported: GRE strict source route bit", greInFlags(0x0800, 0x0800), true},
		{"drop/unsupported: GRE recursion", greInFlags(0x0100, 0x0800), true},
		{"drop/unsupported: GRE reserved bit", greInFlags(0x0080, 0x0800), true},
		{"drop/unsupported: GRE version 1", greInFlags(0x0001, 0x0800), true},
		{"drop/malformed: GRE C|K|S header past outer total length",
			ether(0x0800, ip4(router, local, 47, greHdr(0, 0x0800, nil), func(h []byte) {
				binary.BigEndian.PutUint16(h[20:], 0xb000)
			})), true},
		{"drop/unsupported: GRE protocol IPv6", greInFlags(0, 0x86dd), true},
		// Row 6 in the GRE form.
		{"drop/malformed: inner region < 20", greIn(make([]byte, 19)), true},
		{"drop/malformed: inner version 6", innerEdit(vipWeb, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x65 }), true},
		{"drop/malformed: inner IHL 4", innerEdit(vipWeb, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x44 }), true},
		{"drop/malformed: inner IHL past region", innerEdit(vipWeb, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x4f }), true},
		{"drop/malformed: inner total length < IHL*4", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(2, 19)), true},
		{"drop/malformed: inner total length past region", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(2, 200)), true},
		{"pass/no_service: inner dst not a VIP", greIn(tcp(other, 80)), false},
		{"pass/no_service: inner dst not a VIP, even if fragmented", innerEdit(other, 6, l4(1, 80, 8), set16(6, 0x2000)), false},
		{"drop/fragment: inner MF", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(6, 0x2000)), true},
		{"drop/fragment: inner offset", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(6, 0x0001)), true},
		{"drop/malformed: inner TCP without ports", innerEdit(vipWeb, 6, []byte{0, 1, 0}, nil), true},
		{"drop/malformed: inner UDP without ports", innerEdit(vipUDP, 17, []byte{0, 1}, nil), true},
		{"pass/no_service: VIP, wrong port", greIn(tcp(vipWeb, 81)), false},
		{"pass/no_service: VIP, wrong protocol", innerEdit(vipWeb, 17, l4(1, 80, 8), nil), false},
		{"pass/no_service: VIP, ICMP to a TCP service", innerEdit(vipWeb, 1, make([]byte, 8), nil), false},
		{"tx: GRE, TCP 80", greIn(tcp(vipWeb, 80)), true},
		{"tx: GRE with checksum, key and sequence", ether(0x0800, ip4(router, local, 47, greHdr(0xb000, 0x0800, tcp(vipWeb, 80)), nil)), true},
		{"tx: GRE with key only", ether(0x0800, ip4(router, local, 47, greHdr(0x2000, 0x0800, tcp(vipWeb, 80)), nil)), true},
		{"tx: GRE with Ethernet padding", pad(greIn(tcp(vipWeb, 80)), 20), true},
		{"tx: GRE, inner with IP options", innerEdit(vipWeb, 6, append(make([]byte, 8), l4(1, 80, 8)...), func(h []byte) { h[0] = 0x47 }), true},
		{"tx: any port any protocol, ICMP", innerEdit(vipAll, 1, make([]byte, 8), nil), true},
		{"tx: any port any protocol, TCP", greIn(tcp(vipAll, 12345)), true},
		{"tx: UDP any port", innerEdit(vipUDP, 17, l4(1, 9999, 8), nil), true},
		{"pass/no_service: UDP-only VIP, TCP", greIn(tcp(vipUDP, 9999)), false},
		{"tx: port 53 any protocol, TCP", greIn(tcp(vipDNS, 53)), true},
		{"tx: port 53 any protocol, UDP", innerEdit(vipDNS, 17, l4(1, 53, 8), nil), true},
		{"pass/no_service: port 53 VIP, ICMP (port 0)", innerEdit(vipDNS, 1, make([]byte, 8), nil), false},
		{"drop/no_backend: service with no healthy backend", greIn(tcp(vipDead, 443)), true},
		// Row 5 + 6: the plain form.
		{"tx: plain TCP 80", ether(0x0800, tcp(vipWeb, 80)), true},
		{"tx: plain with Ethernet padding", pad(ether(0x0800, tcp(vipWeb, 80)), 30), true},
		{"pass/no_service: plain, wrong port", ether(0x0800, tcp(vipWeb, 8080)), false},
		{"drop/malformed: plain, total length past frame", plainEdit(vipWeb, 6, l4(1, 80, 8), set16(2, 500)), true},
		{"drop/malformed: plain, IHL 4", plainEdit(vipWeb, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x44 }), true},
		{"drop/fragment: plain MF", plainEdit(vipWeb, 6, l4(1, 80, 8), set16(6, 0x2000)), true},
		{"drop/malformed: plain TCP without ports", plainEdit(vipWeb, 6, nil, nil), true},
		{"tx: plain GRE to a VIP (not local) is the plain form", ether(0x0800, ip4(router, vipAll, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), nil)), true},
		{"drop/no_backend: plain", ether(0x0800, tcp(vipDead, 443)), true},

		// Drop rows whose frame would be a pass if the check were missing
		// or came later: they pin the order of the steps.
		{"drop/unsupported: GRE routing bit, inner not to a VIP", greNoVIP(0x4000, 0x0800, nil), true},
		{"drop/unsupported: GRE version 1, inner not to a VIP", greNoVIP(0x0001, 0x0800, nil), true},
		{"drop/unsupported: GRE reserved bit, inner not to a VIP", greNoVIP(0x0040, 0x0800, nil), true},
		{"drop/unsupported: GRE protocol IPv6, inner not to a VIP", greNoVIP(0, 0x86dd, nil), true},
		{"drop/fragment: outer MF, inner not to a VIP", greNoVIP(0, 0x0800, set16(6, 0x2000)), true},
		{"drop/fragment: outer offset, inner not to a VIP", greNoVIP(0, 0x0800, set16(6, 0x0100)), true},
		{"drop/malformed: outer total length past frame, inner not to a VIP", greNoVIP(0, 0x0800, set16(2, 1000)), true},
		{"drop/malformed: outer version 5, inner not to a VIP", greNoVIP(0, 0x0800, func(h []byte) { h[0] = 0x55 }), true},
		{"drop/malformed: inner version 6, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x65 }), true},
		{"drop/malformed: inner IHL past region, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x4f }), true},
		{"drop/malformed: inner total length past region, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), set16(2, 200)), true},
		{"drop/malformed: inner total length < IHL*4, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), set16(2, 12)), true},
		{"drop/fragment: inner MF to a VIP port without a service", innerEdit(vipWeb, 6, l4(1, 81, 8), set16(6, 0x2000)), true},
		{"drop/fragment: plain offset to a VIP port without a service", plainEdit(vipWeb, 6, l4(1, 81, 8), set16(6, 0x0001)), true},
		{"drop/malformed: inner TCP port cut by total length (port 81 in padding)",
			greIn(append(ip4(client, vipWeb, 6, []byte{0, 1, 0}, nil), 0x51, 0, 0, 0)), true},
		{"drop/malformed: plain TCP port cut by total length (port 81 in padding)",
			ether(0x0800, append(ip4(client, vipWeb, 6, []byte{0, 1, 0}, nil), 0x51, 0, 0, 0)), true},
		{"pass/no_service: inner ports beyond the inner packet are not read",
			greIn(append(ip4(client, vipWeb, 6, l4(1, 81, 0), nil), 0, 80)), false},
		{"pass/no_service: GRE C|K|S, inner (after 16 bytes) not to a VIP",
			ether(0x0800, ip4(router, local, 47, greHdr(0xb000, 0x0800, tcp(other, 80)), nil)), false},
		{"pass/no_service: GRE K, inner (after 8 bytes) not to a VIP",
			ether(0x0800, ip4(router, local, 47, greHdr(0x2000, 0x0800, tcp(other, 80)), nil)), false},
	}
}

// greNoVIP is GRE to the local address carrying TCP to a host that is not
// a VIP (a pass/no_service frame), with GRE flags/protocol and an outer
// header edit applied.
func greNoVIP(flags, proto uint16, outer func([]byte)) []byte {
	return ether(0x0800, ip4(router, local, 47, greHdr(flags, proto, tcp(other, 80)), outer))
}

func greInFlags(flags, proto uint16) []byte {
	return ether(0x0800, ip4(router, local, 47, greHdr(flags, proto, tcp(vipWeb, 80)), nil))
}
