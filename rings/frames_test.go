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

var (
	router6  = netip.MustParseAddr("2001:db8::1").As16()
	local6   = netip.MustParseAddr("2001:db8::2").As16()
	other6   = netip.MustParseAddr("2001:db8::9").As16()
	client6  = netip.MustParseAddr("2001:db8:c::7").As16()
	vip6Web  = netip.MustParseAddr("2001:db8:f::10").As16() // tcp/80
	vip6All  = netip.MustParseAddr("2001:db8:f::20").As16() // any port, any protocol
	vip6Dead = netip.MustParseAddr("2001:db8:f::50").As16() // tcp/443, no healthy backend
	// IPv4-mapped IPv6 forms of IPv4 addresses: never an IPv6 VIP or local address.
	mappedLocal  = netip.AddrFrom4(local).As16()
	mappedVIPWeb = netip.AddrFrom4(vipWeb).As16()
)

func testLocals() []netip.Addr {
	return []netip.Addr{netip.AddrFrom4(local), netip.AddrFrom16(local6)}
}

func testServices() []ServiceKey {
	return []ServiceKey{
		{VIP: netip.AddrFrom4(vipWeb), Port: 80, Proto: 6},
		{VIP: netip.AddrFrom4(vipAll)},
		{VIP: netip.AddrFrom4(vipUDP), Proto: 17},
		{VIP: netip.AddrFrom4(vipDNS), Port: 53},
		{VIP: netip.AddrFrom4(vipDead), Port: 443, Proto: 6},
		{VIP: netip.AddrFrom16(vip6Web), Port: 80, Proto: 6},
		{VIP: netip.AddrFrom16(vip6All)},
		{VIP: netip.AddrFrom16(vip6Dead), Port: 443, Proto: 6},
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
	g = append(g, payload...)
	if flags&0x8000 != 0 {
		binary.BigEndian.PutUint16(g[4:], inetSum(g))
	}
	return g
}

// inetSum is the Internet checksum of b (RFC 1071).
func inetSum(b []byte) uint16 {
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		sum += w
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
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
	return append([]verdictCase{
		// Row 1.
		{"pass/not_ip: empty frame", []byte{}, false},
		{"pass/not_ip: 13 bytes", greIn(tcp(vipWeb, 80))[:13], false},
		{"pass/not_ip: ARP", arp, false},
		{"pass/not_ours: IPv6 to nobody", ipv6, false},
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
		{"drop/unsupported: GRE protocol ARP", greInFlags(0, 0x0806), true},
		// Row 6 in the GRE form.
		{"drop/malformed: inner region < 20", greIn(make([]byte, 19)), true},
		{"drop/malformed: inner version 6", innerEdit(vipWeb, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x65 }), true},
		{"drop/malformed: inner IHL 4", innerEdit(vipWeb, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x44 }), true},
		{"drop/malformed: inner IHL past region", innerEdit(vipWeb, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x4f }), true},
		{"drop/malformed: inner total length < IHL*4", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(2, 19)), true},
		{"drop/malformed: inner total length past region", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(2, 200)), true},
		{"pass/no_service: inner dst not a VIP", greIn(tcp(other, 80)), false},
		{"pass/no_service: inner dst not a VIP, even if fragmented", innerEdit(other, 6, l4(1, 80, 8), set16(6, 0x2000)), false},
		{"pass/no_service: inner dst not a VIP, even a later fragment", innerEdit(other, 6, l4(1, 80, 8), set16(6, 0x0001)), false},
		{"tx: inner first fragment (MF), port 80", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(6, 0x2000)), true},
		{"tx: inner later fragment (offset)", innerEdit(vipWeb, 6, l4(1, 80, 8), set16(6, 0x0001)), true},
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
		{"tx: plain first fragment (MF), port 80", plainEdit(vipWeb, 6, l4(1, 80, 8), set16(6, 0x2000)), true},
		{"drop/malformed: plain TCP without ports", plainEdit(vipWeb, 6, nil, nil), true},
		{"tx: plain GRE to a VIP (not local) is the plain form", ether(0x0800, ip4(router, vipAll, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), nil)), true},
		{"drop/no_backend: plain", ether(0x0800, tcp(vipDead, 443)), true},

		// Drop rows whose frame would be a pass if the check were missing
		// or came later: they pin the order of the steps.
		{"drop/unsupported: GRE routing bit, inner not to a VIP", greNoVIP(0x4000, 0x0800, nil), true},
		{"drop/unsupported: GRE version 1, inner not to a VIP", greNoVIP(0x0001, 0x0800, nil), true},
		{"drop/unsupported: GRE reserved bit, inner not to a VIP", greNoVIP(0x0040, 0x0800, nil), true},
		{"drop/unsupported: GRE protocol ARP, inner not to a VIP", greNoVIP(0, 0x0806, nil), true},
		{"drop/fragment: outer MF, inner not to a VIP", greNoVIP(0, 0x0800, set16(6, 0x2000)), true},
		{"drop/fragment: outer offset, inner not to a VIP", greNoVIP(0, 0x0800, set16(6, 0x0100)), true},
		{"drop/malformed: outer total length past frame, inner not to a VIP", greNoVIP(0, 0x0800, set16(2, 1000)), true},
		{"drop/malformed: outer version 5, inner not to a VIP", greNoVIP(0, 0x0800, func(h []byte) { h[0] = 0x55 }), true},
		{"drop/malformed: inner version 6, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x65 }), true},
		{"drop/malformed: inner IHL past region, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x4f }), true},
		{"drop/malformed: inner total length past region, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), set16(2, 200)), true},
		{"drop/malformed: inner total length < IHL*4, not to a VIP", innerEdit(other, 6, l4(1, 80, 8), set16(2, 12)), true},
		{"pass/no_service: inner first fragment (MF) to a VIP port without a service", innerEdit(vipWeb, 6, l4(1, 81, 8), set16(6, 0x2000)), false},
		{"tx: inner later fragment to a VIP, port bytes without a service", innerEdit(vipWeb, 6, l4(1, 81, 8), set16(6, 0x2001)), true},
		{"tx: plain later fragment to a VIP, port bytes without a service", plainEdit(vipWeb, 6, l4(1, 81, 8), set16(6, 0x0001)), true},
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
	}, newVerdictCases()...)
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

// ip6 builds an IPv6 header + payload; edit, if set, may change the header
// (and the slice).
func ip6(src, dst [16]byte, nh uint8, payload []byte, edit func(h []byte)) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(len(payload)))
	h[6] = nh
	h[7] = 64
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	p := append(h, payload...)
	if edit != nil {
		edit(p)
	}
	return p
}

// ext is an IPv6 extension header without its next-header byte.
type ext struct {
	typ  uint8
	body []byte // from byte 1 on
}

// opts is a hop-by-hop (0), routing (43) or destination options (60)
// header of (n+1)·8 bytes.
func opts(typ uint8, n int) ext {
	b := make([]byte, (n+1)*8-1)
	b[0] = byte(n)
	return ext{typ, b}
}

// ah is an authentication header of (n+2)·4 bytes.
func ah(n int) ext {
	b := make([]byte, (n+2)*4-1)
	b[0] = byte(n)
	return ext{51, b}
}

// frag is a fragment header: offset in 8-byte units, M flag, id.
func frag(offset uint16, more bool) ext {
	b := make([]byte, 7)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[1:], v)
	binary.BigEndian.PutUint32(b[3:], 0xdecaf)
	return ext{44, b}
}

// chain puts headers hs in front of payload (of protocol proto) and
// returns the first next-header value and the bytes.
func chain(proto uint8, payload []byte, hs ...ext) (uint8, []byte) {
	var out []byte
	for i, h := range hs {
		next := proto
		if i+1 < len(hs) {
			next = hs[i+1].typ
		}
		out = append(out, next)
		out = append(out, h.body...)
	}
	out = append(out, payload...)
	if len(hs) == 0 {
		return proto, out
	}
	return hs[0].typ, out
}

func ip6x(src, dst [16]byte, proto uint8, payload []byte, hs ...ext) []byte {
	nh, b := chain(proto, payload, hs...)
	return ip6(src, dst, nh, b, nil)
}

func tcp6(dst [16]byte, dport uint16) []byte {
	return ip6(client6, dst, 6, l4(40000, dport, 16), nil)
}

// gre6 is GRE over IPv6 to local6 (outer extension headers hs).
func gre6(flags, proto uint16, inner []byte, hs ...ext) []byte {
	return ether(0x86dd, ip6x(router6, local6, 47, greHdr(flags, proto, inner), hs...))
}

// greIn6 is an IPv6 inner packet in GRE over IPv4.
func greIn6(inner []byte) []byte {
	return ether(0x0800, ip4(router, local, 47, greHdr(0, 0x86dd, inner), nil))
}

// icmp is an ICMP or ICMPv6 message: type, code 0, checksum, 4 bytes, body.
func icmp(typ uint8, body []byte) []byte {
	m := append(make([]byte, 8), body...)
	m[0] = typ
	binary.BigEndian.PutUint16(m[2:], inetSum(m))
	return m
}

// quote is what an ICMP error quotes: the first n bytes of p.
func quote(p []byte, n int) []byte { return append([]byte(nil), p[:min(n, len(p))]...) }

// reply4 is the packet a backend sent from vip:sport to the client.
func reply4(vip [4]byte, proto uint8, sport uint16) []byte {
	return ip4(vip, client, proto, l4(sport, 40000, 16), nil)
}

func reply6(vip [16]byte, proto uint8, sport uint16) []byte {
	return ip6(vip, client6, proto, l4(sport, 40000, 16), nil)
}

// icmpTo4 is an ICMP message from a router on the path to dst, plain form.
func icmpTo4(dst [4]byte, typ uint8, body []byte) []byte {
	return ether(0x0800, ip4(other, dst, 1, icmp(typ, body), nil))
}

func icmpTo6(dst [16]byte, typ uint8, body []byte) []byte {
	return ether(0x86dd, ip6(other6, dst, 58, icmp(typ, body), nil))
}

// badSum breaks the GRE checksum at frame[off:].
func badSum(f []byte, off int) []byte {
	f[off+4] ^= 0x5a
	return f
}

// newVerdictCases are the rows of the rewritten document: IPv6 outer and
// inner, extension headers, GRE checksums, fragments, ICMP errors and echo
// requests. Each pass row has a drop row next to it whose frame would be a
// pass if the drop's check were missing or came later.
func newVerdictCases() []verdictCase {
	greTo := func(flags uint16, inner []byte) []byte {
		return ether(0x0800, ip4(router, local, 47, greHdr(flags, 0x0800, inner), nil))
	}
	const g4 = 14 + 20 // GRE offset, IPv4 outer
	const g6 = 14 + 40 // GRE offset, IPv6 outer without extension headers
	big := func(dst [4]byte, n int) []byte { return ip4(client, dst, 6, l4(40000, 80, n), nil) }
	eightExt := []ext{opts(0, 0), opts(60, 1), opts(43, 0), ah(1), opts(60, 0), opts(60, 2), ah(4), opts(60, 0)}
	nineExt := append(append([]ext(nil), eightExt...), opts(60, 0))
	// A later fragment whose "next header" is destination options, followed
	// by payload bytes that look like such a header leading to GRE.
	laterFragGRE := func() []byte {
		body := append([]byte{47, 0, 0, 0, 0, 0, 0, 0}, greHdr(0, 0x0800, tcp(vipWeb, 80))...)
		f := frag(100, false)
		return ether(0x86dd, ip6(router6, local6, 44, append(append([]byte{60}, f.body...), body...), nil))
	}
	icmpEcho4 := icmp(8, []byte("ping"))
	return []verdictCase{
		// §1.3: IPv6 outer.
		{"pass/not_ours: IPv6 ethertype, 53 bytes", gre6(0, 0x0800, tcp(vipWeb, 80))[:53], false},
		{"pass/not_ours: IPv6 TCP to the local address (SSH)", ether(0x86dd, ip6(client6, local6, 6, l4(1, 22, 8), nil)), false},
		{"pass/not_ours: ICMPv6 echo request to the local address", ether(0x86dd, ip6(client6, local6, 58, icmp(128, nil), nil)), false},
		{"pass/not_ours: ICMPv6 neighbor solicitation to the local address", ether(0x86dd, ip6(client6, local6, 58, icmp(135, make([]byte, 16)), nil)), false},
		{"pass/not_ours: TCP to another IPv6 host", ether(0x86dd, tcp6(other6, 80)), false},
		{"pass/not_ours: GRE to another IPv6 address", ether(0x86dd, ip6(router6, other6, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), nil)), false},
		{"pass/not_ours: GRE to the IPv4-mapped local address", ether(0x86dd, ip6(router6, mappedLocal, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), nil)), false},
		{"pass/not_ours: TCP to the IPv4-mapped form of an IPv4 VIP", ether(0x86dd, ip6(client6, mappedVIPWeb, 6, l4(1, 80, 8), nil)), false},
		{"pass/not_ours: local IPv6, version 4", ether(0x86dd, ip6(router6, local6, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), func(h []byte) { h[0] = 0x40 })), false},
		{"pass/not_ours: local IPv6, payload length past frame", ether(0x86dd, ip6(router6, local6, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), set16(4, 500))), false},
		{"pass/not_ours: local IPv6, hop-by-hop then TCP", ether(0x86dd, ip6x(client6, local6, 6, l4(1, 22, 8), opts(0, 0))), false},
		{"pass/not_ours: local IPv6, extension header past payload length",
			ether(0x86dd, ip6x(router6, local6, 47, greHdr(0, 0x0800, tcp(vipWeb, 80)), opts(60, 0))[:40+4]), false},
		{"pass/not_ours: local IPv6, extension header past payload length (padding after it)",
			ether(0x86dd, append(ip6(router6, local6, 60, []byte{47, 1, 0, 0, 0, 0, 0, 0}, nil), make([]byte, 40)...)), false},
		{"pass/not_ours: local IPv6, 9 extension headers then GRE", gre6(0, 0x0800, tcp(vipWeb, 80), nineExt...), false},
		{"tx: local IPv6, 8 extension headers then GRE", gre6(0, 0x0800, tcp(vipWeb, 80), eightExt...), true},
		{"pass/not_ours: local IPv6, later fragment (next header 60), payload that would walk to GRE", laterFragGRE(), false},
		{"drop/fragment: local IPv6, first fragment of GRE, inner not to a VIP", gre6(0, 0x0800, tcp(other, 80), frag(0, true)), true},
		{"drop/fragment: local IPv6, later fragment of GRE, inner not to a VIP", gre6(0, 0x0800, tcp(other, 80), frag(9, false)), true},
		{"drop/fragment: local IPv6, atomic fragment of GRE, inner not to a VIP", gre6(0, 0x0800, tcp(other, 80), frag(0, false)), true},
		{"tx: GRE over IPv6, inner IPv4 TCP 80", gre6(0, 0x0800, tcp(vipWeb, 80)), true},
		{"tx: GRE over IPv6, inner IPv6 TCP 80", gre6(0, 0x86dd, tcp6(vip6Web, 80)), true},
		{"tx: GRE over IPv6 with hop-by-hop, destination options, AH", gre6(0, 0x0800, tcp(vipWeb, 80), opts(0, 1), opts(60, 0), ah(2)), true},
		{"tx: GRE over IPv6, Ethernet padding", append(gre6(0, 0x0800, tcp(vipWeb, 80)), make([]byte, 30)...), true},
		{"pass/no_service: GRE over IPv6, inner IPv4 not to a VIP", gre6(0, 0x0800, tcp(other, 80)), false},
		{"pass/no_service: GRE over IPv6, inner IPv6 not to a VIP", gre6(0, 0x86dd, tcp6(other6, 80)), false},
		{"pass/no_service: GRE over IPv6 with extension headers, inner not to a VIP", gre6(0, 0x0800, tcp(other, 80), opts(0, 0), ah(1)), false},
		{"pass/no_service: GRE over IPv6, inner IPv6 TCP 81", gre6(0, 0x86dd, tcp6(vip6Web, 81)), false},
		{"pass/not_ours: local IPv6, GRE cut by the frame (payload length past it)", gre6(0, 0x0800, nil)[:g6+2], false},
		{"drop/malformed: GRE over IPv6, 2 bytes of GRE header", ether(0x86dd, ip6(router6, local6, 47, []byte{0, 0}, nil)), true},
		{"drop/malformed: GRE over IPv6, 2 bytes of GRE header (padding after)",
			append(ether(0x86dd, ip6(router6, local6, 47, []byte{0, 0}, nil)), 8, 0, 0x45, 0, 0, 0, 0, 0), true},
		{"drop/unsupported: GRE over IPv6 routing bit, inner not to a VIP", gre6(0x4000, 0x0800, tcp(other, 80)), true},
		{"drop/malformed: GRE over IPv6 K header past the region, inner not to a VIP",
			ether(0x86dd, ip6(router6, local6, 47, greHdr(0, 0x0800, nil), func(h []byte) { h[40] = 0x20 })), true},
		{"drop/no_backend: GRE over IPv6, inner IPv6 TCP 443, no healthy backend", gre6(0, 0x86dd, tcp6(vip6Dead, 443)), true},

		// §2: GRE protocols and checksums.
		{"tx: GRE protocol IPv6 over IPv4, TCP 80", greIn6(tcp6(vip6Web, 80)), true},
		{"pass/no_service: GRE protocol IPv6 over IPv4, inner not to a VIP", greIn6(tcp6(other6, 80)), false},
		{"pass/no_service: GRE protocol IPv6 over IPv4, inner to an IPv4-mapped VIP", greIn6(ip6(client6, mappedVIPWeb, 6, l4(1, 80, 8), nil)), false},
		{"pass/no_service: GRE protocol IPv4, inner dst = an IPv6 VIP's last 4 bytes", greIn(tcp([4]byte{0, 0, 0, 0x10}, 80)), false},
		{"drop/unsupported: GRE protocol 0x88be, inner not to a VIP", greNoVIP(0, 0x88be, nil), true},
		{"tx: GRE checksum", greTo(0x8000, tcp(vipWeb, 80)), true},
		{"tx: GRE checksum, odd length", greTo(0x8000, ip4(client, vipWeb, 6, l4(40000, 80, 17), nil)), true},
		{"tx: GRE checksum, 1400-byte inner packet", greTo(0x8000, big(vipWeb, 1376)), true},
		{"tx: GRE checksum, 1001-byte inner packet", greTo(0xa000, big(vipWeb, 977)), true},
		{"tx: GRE checksum over IPv6", gre6(0x8000, 0x86dd, tcp6(vip6Web, 80)), true},
		{"pass/no_service: GRE checksum, inner not to a VIP", greTo(0x8000, tcp(other, 80)), false},
		{"pass/no_service: GRE checksum, 1400-byte inner packet not to a VIP", greTo(0x8000, big(other, 1376)), false},
		{"pass/no_service: GRE checksum, 1001-byte inner packet not to a VIP", greTo(0x8000, big(other, 977)), false},
		{"pass/no_service: GRE checksum over IPv6 with AH, inner not to a VIP", gre6(0x9000, 0x0800, tcp(other, 80), ah(1)), false},
		{"pass/no_service: GRE checksum, Ethernet padding not summed",
			append(greTo(0x8000, tcp(other, 80)), 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc), false},
		{"drop/malformed: GRE checksum bad", badSum(greTo(0x8000, tcp(vipWeb, 80)), g4), true},
		{"drop/malformed: GRE checksum bad, inner not to a VIP", badSum(greTo(0x8000, tcp(other, 80)), g4), true},
		{"drop/malformed: GRE checksum bad, odd length, inner not to a VIP", badSum(greTo(0x8000, ip4(client, other, 6, l4(1, 80, 17), nil)), g4), true},
		{"drop/malformed: GRE checksum bad, 1400-byte inner not to a VIP", badSum(greTo(0x8000, big(other, 1376)), g4), true},
		{"drop/malformed: GRE checksum bad, 1001-byte inner not to a VIP", badSum(greTo(0xb000, big(other, 977)), g4), true},
		{"drop/malformed: GRE checksum bad over IPv6, inner not to a VIP", badSum(gre6(0x8000, 0x86dd, tcp6(other6, 80)), g6), true},
		{"drop/malformed: GRE checksum bad, last byte, inner not to a VIP", func() []byte {
			f := greTo(0x8000, ip4(client, other, 6, l4(1, 80, 17), nil))
			f[len(f)-1] ^= 1
			return f
		}(), true},

		// §3.1, §3.2: inner IPv6.
		{"drop/malformed: inner IPv6 region < 40, not to a VIP", greIn6(tcp6(other6, 80)[:39]), true},
		{"drop/malformed: inner IPv6 version 4, not to a VIP", greIn6(ip6(client6, other6, 6, l4(1, 80, 8), func(h []byte) { h[0] = 0x40 })), true},
		{"drop/malformed: inner IPv6 payload length past region, not to a VIP", greIn6(ip6(client6, other6, 6, l4(1, 80, 8), set16(4, 13))), true},
		{"tx: inner IPv6, Ethernet padding", append(greIn6(tcp6(vip6Web, 80)), make([]byte, 9)...), true},
		{"tx: plain IPv6 TCP 80", ether(0x86dd, tcp6(vip6Web, 80)), true},
		{"tx: plain IPv6 any service, UDP", ether(0x86dd, ip6(client6, vip6All, 17, l4(1, 9, 8), nil)), true},
		{"pass/no_service: plain IPv6, wrong port", ether(0x86dd, tcp6(vip6Web, 8080)), false},
		{"pass/no_service: plain IPv6, UDP to a TCP service", ether(0x86dd, ip6(client6, vip6Web, 17, l4(1, 80, 8), nil)), false},
		{"drop/malformed: plain IPv6, payload length past frame", ether(0x86dd, ip6(client6, vip6Web, 6, l4(1, 81, 8), set16(4, 200))), true},
		{"drop/malformed: plain IPv6, version 4", ether(0x86dd, ip6(client6, vip6Web, 6, l4(1, 81, 8), func(h []byte) { h[0] = 0x45 })), true},
		{"drop/malformed: plain IPv6 TCP without ports", ether(0x86dd, ip6(client6, vip6Web, 6, []byte{0, 1, 0}, nil)), true},
		{"drop/malformed: plain IPv6 TCP port cut by payload length (port 81 in padding)",
			ether(0x86dd, append(ip6(client6, vip6Web, 6, []byte{0, 1, 0}, nil), 0x51, 0, 0, 0)), true},
		{"drop/no_backend: plain IPv6", ether(0x86dd, tcp6(vip6Dead, 443)), true},

		// §3.3: inner extension headers.
		{"tx: plain IPv6, hop-by-hop, routing, destination options, TCP 80",
			ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 80, 8), opts(0, 0), opts(43, 1), opts(60, 0))), true},
		{"pass/no_service: plain IPv6, extension headers, TCP 81",
			ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 81, 8), opts(0, 0), opts(43, 1), opts(60, 0))), false},
		{"tx: plain IPv6, 8 extension headers, TCP 80", ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 80, 8), eightExt...)), true},
		{"pass/no_service: plain IPv6, 8 extension headers, TCP 81", ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 81, 8), eightExt...)), false},
		{"drop/unsupported: plain IPv6, 9 extension headers, TCP 81", ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 81, 8), nineExt...)), true},
		{"drop/unsupported: GRE inner IPv6, 9 extension headers, TCP 81", greIn6(ip6x(client6, vip6Web, 6, l4(1, 81, 8), nineExt...)), true},
		{"drop/malformed: plain IPv6, extension header past the packet",
			ether(0x86dd, ip6(client6, vip6Web, 0, []byte{6, 2, 0, 0, 0, 0, 0, 0}, nil)), true},
		{"drop/malformed: plain IPv6, extension header past payload length (padding after it)",
			ether(0x86dd, append(ip6(client6, vip6Web, 60, []byte{6, 0, 0, 0}, nil), 0, 0, 0, 0, 0, 1, 0, 81)), true},
		{"drop/malformed: GRE inner IPv6, AH past the packet", greIn6(ip6(client6, vip6Web, 51, []byte{6, 9, 0, 0, 0, 0, 0, 0}, nil)), true},
		{"pass/no_service: plain IPv6, no next header (59)", ether(0x86dd, ip6x(client6, vip6Web, 59, nil, opts(60, 0))), false},
		{"tx: plain IPv6, no next header (59), any service", ether(0x86dd, ip6x(client6, vip6All, 59, nil, opts(60, 0))), true},

		// §3.3, §3.4, §3.6: fragments.
		{"tx: plain IPv4 later fragment, no transport bytes", plainFrag(vipWeb, 6, nil, 0x0010), true},
		{"tx: plain IPv4 later fragment to a UDP-only VIP, TCP", plainFrag(vipUDP, 6, l4(1, 80, 8), 0x0010), true},
		{"tx: plain IPv4 later fragment, ICMP", plainFrag(vipWeb, 1, make([]byte, 8), 0x2010), true},
		{"pass/no_service: plain IPv4 first fragment, port 81", plainFrag(vipWeb, 6, l4(1, 81, 8), 0x2000), false},
		{"drop/malformed: plain IPv4 first fragment without ports", plainFrag(vipWeb, 6, []byte{0, 1}, 0x2000), true},
		{"pass/no_service: GRE IPv4 later fragment not to a VIP", greIn(ip4(client, other, 6, nil, set16(6, 0x0020))), false},
		{"tx: plain IPv6 first fragment, TCP 80", ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 80, 8), frag(0, true))), true},
		{"pass/no_service: plain IPv6 first fragment, TCP 81", ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 81, 8), frag(0, true))), false},
		{"pass/no_service: plain IPv6 atomic fragment, TCP 81", ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 81, 8), frag(0, false))), false},
		{"drop/malformed: plain IPv6 first fragment, TCP without ports", ether(0x86dd, ip6x(client6, vip6Web, 6, []byte{0, 1}, frag(0, true))), true},
		{"tx: plain IPv6 later fragment, port bytes 81", ether(0x86dd, ip6x(client6, vip6Web, 6, l4(1, 81, 8), frag(3, true))), true},
		{"tx: plain IPv6 last fragment, no transport bytes", ether(0x86dd, ip6x(client6, vip6Web, 6, nil, frag(3, false))), true},
		{"tx: plain IPv6 later fragment, UDP to a TCP-only VIP", ether(0x86dd, ip6x(client6, vip6Web, 17, l4(1, 81, 8), opts(0, 0), frag(3, false))), true},
		{"tx: plain IPv6 later fragment, next header 60, then bytes that are no header",
			ether(0x86dd, ip6x(client6, vip6Web, 60, []byte{6, 200, 1, 2}, frag(3, false))), true},
		{"tx: GRE inner IPv6 later fragment", greIn6(ip6x(client6, vip6Web, 6, l4(1, 81, 8), frag(1, false))), true},
		{"pass/no_service: GRE inner IPv6 later fragment not to a VIP", greIn6(ip6x(client6, other6, 6, l4(1, 80, 8), frag(1, false))), false},

		// §3.4: ICMP echo requests.
		{"tx: plain ICMP echo request to a TCP-only VIP", ether(0x0800, ip4(client, vipWeb, 1, icmpEcho4, nil)), true},
		{"tx: GRE ICMP echo request to a TCP-only VIP", greIn(ip4(client, vipWeb, 1, icmpEcho4, nil)), true},
		{"tx: ICMPv6 echo request to a TCP-only VIP", ether(0x86dd, ip6(client6, vip6Web, 58, icmp(128, nil), nil)), true},
		{"tx: ICMPv6 echo request after extension headers", ether(0x86dd, ip6x(client6, vip6Web, 58, icmp(128, nil), opts(0, 0), opts(60, 0))), true},
		{"tx: GRE over IPv6, ICMPv6 echo request", gre6(0, 0x86dd, ip6(client6, vip6Web, 58, icmp(128, nil), nil)), true},
		{"pass/no_service: GRE ICMP echo request not to a VIP", greIn(ip4(client, other, 1, icmpEcho4, nil)), false},
		{"pass/no_service: ICMP echo reply to a TCP-only VIP", ether(0x0800, ip4(client, vipWeb, 1, icmp(0, nil), nil)), false},
		{"pass/no_service: ICMPv6 echo reply to a TCP-only VIP", ether(0x86dd, ip6(client6, vip6Web, 58, icmp(129, nil), nil)), false},
		{"pass/no_service: ICMP type 128 over IPv4", ether(0x0800, ip4(client, vipWeb, 1, icmp(128, nil), nil)), false},
		{"pass/no_service: ICMP (protocol 1) type 8 over IPv6", ether(0x86dd, ip6(client6, vip6Web, 1, icmp(8, nil), nil)), false},
		{"pass/no_service: ICMPv6 (protocol 58) type 8 over IPv4", ether(0x0800, ip4(client, vipWeb, 58, icmp(8, nil), nil)), false},
		{"pass/no_service: ICMP with no bytes to a TCP-only VIP", ether(0x0800, ip4(client, vipWeb, 1, nil, nil)), false},
		{"tx: ICMP with no bytes, any service", ether(0x0800, ip4(client, vipAll, 1, nil, nil)), true},
		{"tx: ICMP echo request, 1 byte", ether(0x0800, ip4(client, vipWeb, 1, []byte{8}, nil)), true},

		// §3.4: ICMP errors, routed by the embedded packet.
		{"tx: ICMP unreachable for TCP from VIP:80", icmpTo4(vipWeb, 3, quote(reply4(vipWeb, 6, 80), 28)), true},
		{"tx: ICMP time exceeded for TCP from VIP:80", icmpTo4(vipWeb, 11, quote(reply4(vipWeb, 6, 80), 28)), true},
		{"tx: ICMP frag needed, whole packet quoted", icmpTo4(vipWeb, 3, reply4(vipWeb, 6, 80)), true},
		{"tx: GRE ICMP unreachable for TCP from VIP:80", greIn(ip4(other, vipWeb, 1, icmp(3, quote(reply4(vipWeb, 6, 80), 28)), nil)), true},
		{"tx: ICMP unreachable, embedded with IP options", icmpTo4(vipWeb, 3, quote(ip4(vipWeb, client, 6, append(make([]byte, 4), l4(80, 40000, 0)...), func(h []byte) { h[0] = 0x46 }), 28)), true},
		{"tx: ICMP unreachable for UDP from a UDP-any VIP", icmpTo4(vipUDP, 3, quote(reply4(vipUDP, 17, 9999), 28)), true},
		{"tx: ICMP unreachable for UDP from VIP:53, any protocol", icmpTo4(vipDNS, 3, quote(reply4(vipDNS, 17, 53), 28)), true},
		{"pass/no_service: ICMP unreachable for TCP from VIP:81", icmpTo4(vipWeb, 3, quote(reply4(vipWeb, 6, 81), 28)), false},
		{"pass/no_service: ICMP unreachable for UDP from a TCP service's port", icmpTo4(vipWeb, 3, quote(reply4(vipWeb, 17, 80), 28)), false},
		{"pass/no_service: ICMP unreachable for TCP to a UDP-only VIP", icmpTo4(vipUDP, 3, quote(reply4(vipUDP, 6, 9999), 28)), false},
		{"pass/no_service: ICMP unreachable whose embedded destination port is 80", icmpTo4(vipWeb, 3, quote(ip4(vipWeb, client, 6, l4(40000, 80, 16), nil), 28)), false},
		{"pass/no_service: ICMP unreachable for ICMP (bytes 00 35) from a port-53 VIP",
			icmpTo4(vipDNS, 3, quote(ip4(vipDNS, client, 1, l4(53, 53, 8), nil), 28)), false},
		{"pass/no_service: GRE ICMP unreachable not to a VIP", greIn(ip4(other, other, 1, icmp(3, quote(reply4(vipWeb, 6, 80), 28)), nil)), false},
		{"pass/no_service: ICMP redirect (type 5) to a TCP-only VIP", icmpTo4(vipWeb, 5, quote(reply4(vipWeb, 6, 80), 28)), false},
		{"pass/no_service: ICMP parameter problem (type 12) to a TCP-only VIP", icmpTo4(vipWeb, 12, quote(reply4(vipWeb, 6, 80), 28)), false},
		{"drop/malformed: ICMP unreachable, 3 bytes of the embedded transport header", icmpTo4(vipWeb, 3, quote(reply4(vipWeb, 6, 81), 23)), true},
		{"drop/malformed: ICMP unreachable, no embedded packet", icmpTo4(vipWeb, 3, nil), true},
		{"drop/malformed: ICMP unreachable, 4 bytes", ether(0x0800, ip4(other, vipWeb, 1, []byte{3, 0, 0, 0}, nil)), true},
		{"drop/malformed: ICMP unreachable, embedded version 6", icmpTo4(vipWeb, 3, quote(ip4(vipWeb, client, 6, l4(81, 1, 8), func(h []byte) { h[0] = 0x65 }), 28)), true},
		{"drop/malformed: ICMP unreachable, embedded IHL 4", icmpTo4(vipWeb, 3, quote(ip4(vipWeb, client, 6, l4(81, 1, 8), func(h []byte) { h[0] = 0x44 }), 28)), true},
		{"drop/malformed: ICMP unreachable, embedded IHL·4 > total length", icmpTo4(vipWeb, 3, quote(ip4(vipWeb, client, 6, l4(81, 1, 8), set16(2, 19)), 28)), true},
		{"drop/malformed: ICMP unreachable, embedded IHL past the quote", icmpTo4(vipWeb, 3, quote(ip4(vipWeb, client, 6, l4(81, 1, 8), func(h []byte) { h[0] = 0x4f }), 28)), true},
		{"drop/malformed: ICMP unreachable, embedded IPv4 cut by the outer total length",
			ether(0x0800, append(ip4(other, vipWeb, 1, icmp(3, quote(reply4(vipWeb, 6, 81), 22)), nil), 0, 0x51)), true},
		{"tx: ICMPv6 unreachable (1) for TCP from VIP:80", icmpTo6(vip6Web, 1, quote(reply6(vip6Web, 6, 80), 48)), true},
		{"tx: ICMPv6 packet too big (2) for TCP from VIP:80", icmpTo6(vip6Web, 2, quote(reply6(vip6Web, 6, 80), 48)), true},
		{"tx: ICMPv6 time exceeded (3) for TCP from VIP:80", icmpTo6(vip6Web, 3, reply6(vip6Web, 6, 80)), true},
		{"tx: GRE over IPv6, ICMPv6 packet too big", gre6(0, 0x86dd, ip6(other6, vip6Web, 58, icmp(2, quote(reply6(vip6Web, 6, 80), 48)), nil)), true},
		{"tx: ICMPv6 error after an extension header", ether(0x86dd, ip6x(other6, vip6Web, 58, icmp(1, quote(reply6(vip6Web, 6, 80), 48)), opts(60, 0))), true},
		{"pass/no_service: ICMPv6 unreachable for TCP from VIP:81", icmpTo6(vip6Web, 1, quote(reply6(vip6Web, 6, 81), 48)), false},
		{"pass/no_service: ICMPv6 parameter problem (4)", icmpTo6(vip6Web, 4, quote(reply6(vip6Web, 6, 80), 48)), false},
		{"tx: ICMPv6 error, embedded extension headers walked",
			icmpTo6(vip6Web, 1, quote(ip6x(vip6Web, client6, 6, l4(80, 40000, 8), opts(0, 0), ah(1)), 68)), true},
		{"pass/no_service: ICMPv6 error, embedded extension headers, TCP from port 81",
			icmpTo6(vip6Web, 1, quote(ip6x(vip6Web, client6, 6, l4(81, 40000, 8), opts(0, 0), ah(1)), 68)), false},
		{"drop/malformed: ICMPv6 error, embedded extension header past the quote",
			icmpTo6(vip6Web, 1, quote(ip6x(vip6Web, client6, 6, l4(81, 40000, 8), opts(0, 3)), 56)), true},
		{"drop/malformed: ICMPv6 error, embedded extension headers, 3 bytes of transport header",
			icmpTo6(vip6Web, 1, quote(ip6x(vip6Web, client6, 6, l4(81, 40000, 8), opts(0, 0)), 51)), true},
		{"drop/malformed: ICMPv6 error, 9 embedded extension headers",
			icmpTo6(vip6Web, 1, quote(ip6x(vip6Web, client6, 6, l4(81, 40000, 8), nineExt...), 200)), true},
		{"drop/malformed: ICMPv6 unreachable, 3 bytes of embedded transport header", icmpTo6(vip6Web, 1, quote(reply6(vip6Web, 6, 81), 43)), true},
		{"drop/malformed: ICMPv6 unreachable, embedded IPv4", icmpTo6(vip6Web, 1, quote(reply4(vipWeb, 6, 81), 28)), true},
		{"drop/malformed: ICMPv6 unreachable, embedded version 4", icmpTo6(vip6Web, 1, quote(ip6(vip6Web, client6, 6, l4(81, 1, 8), func(h []byte) { h[0] = 0x40 }), 48)), true},
		{"drop/malformed: ICMP unreachable over IPv4, embedded IPv6", icmpTo4(vipWeb, 3, quote(reply6(vip6Web, 6, 81), 48)), true},
	}
}

// plainFrag is a plain IPv4 packet to dst with flags/fragment offset word fo.
func plainFrag(dst [4]byte, proto uint8, payload []byte, fo uint16) []byte {
	return ether(0x0800, ip4(client, dst, proto, payload, set16(6, fo)))
}
