package pipeline

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	routerMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	nodeMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	localAddr = netip.MustParseAddr("10.0.0.2")
	routerIP  = netip.MustParseAddr("10.0.0.1")
	vip       = netip.MustParseAddr("192.0.2.10")
	clientIP  = netip.MustParseAddr("198.51.100.7")
	backends  = []netip.Addr{
		netip.MustParseAddr("10.1.0.11"),
		netip.MustParseAddr("10.1.0.12"),
		netip.MustParseAddr("10.1.0.13"),
	}
	localAddr6 = netip.MustParseAddr("2001:db8::2")
	routerIP6  = netip.MustParseAddr("2001:db8::1")
	vip6       = netip.MustParseAddr("2001:db8:100::10") // IPv6 backends
	vipMixed   = netip.MustParseAddr("2001:db8:100::20") // IPv4 backends
	vip4to6    = netip.MustParseAddr("192.0.2.60")       // IPv6 backends
	clientIP6  = netip.MustParseAddr("2001:db8:c::7")
	backends6  = []netip.Addr{
		netip.MustParseAddr("2001:db8:1::11"),
		netip.MustParseAddr("2001:db8:1::12"),
	}
)

// testConfig is one TCP service on port 80 with three backends, a UDP
// service on every port of a second VIP, and a service with no usable backend.
func testConfig() Config {
	var bs []BackendConfig
	for i, a := range backends {
		bs = append(bs, BackendConfig{Address: a, Weight: 1, Healthy: true, ID: uint32(i)})
	}
	var bs6 []BackendConfig
	for i, a := range backends6 {
		bs6 = append(bs6, BackendConfig{Address: a, Weight: 1, Healthy: true, ID: uint32(20 + i)})
	}
	return Config{
		Local:  localAddr,
		Local6: localAddr6,
		Seed:   42,
		Services: []ServiceConfig{
			{Name: "web", VIP: vip, Port: 80, Proto: 6, TableSize: 65537, Backends: bs},
			{Name: "dns", VIP: netip.MustParseAddr("192.0.2.53"), Port: 0, Proto: 17, TableSize: 251, Backends: bs[:1]},
			{Name: "empty", VIP: netip.MustParseAddr("192.0.2.99"), Port: 443, Proto: 6, TableSize: 251,
				Backends: []BackendConfig{{Address: backends[0], Weight: 0, Healthy: true, ID: 9}}},
			{Name: "web6", VIP: vip6, Port: 80, Proto: 6, TableSize: 251, Backends: bs6},
			{Name: "mixed6", VIP: vipMixed, Port: 443, Proto: 6, TableSize: 251, Backends: bs[1:]},
			{Name: "to6", VIP: vip4to6, Port: 0, Proto: 0, TableSize: 251, Backends: bs6[:1]},
		},
	}
}

func newTestWorker(t testing.TB, c Config) *Worker {
	t.Helper()
	s, err := NewSnapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := NewConntrack(1024, time.Hour, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(ct)
	w.Begin(s, time.Now())
	return w
}

// innerSpec describes the inner (client) packet.
type innerSpec struct {
	src, dst     netip.Addr
	proto        layers.IPProtocol
	sport, dport uint16
	df           bool
	fragOffset   uint16 // in 8-byte units
	mf           bool
	fragID       uint32
	ext          []byte // IPv6: raw extension headers (each with its next-header byte set by ip6Ext)
	extTypes     []uint8
	icmpType     uint8
	icmpBody     []byte // ICMP: what follows the 8-byte header
	payload      []byte
}

// v6Inner is defaultInner for IPv6: client → vip6:80 TCP.
func v6Inner() innerSpec {
	return innerSpec{src: clientIP6, dst: vip6, proto: layers.IPProtocolTCP, sport: 40000, dport: 80, payload: []byte("hello, rail v6")}
}

func defaultInner() innerSpec {
	return innerSpec{src: clientIP, dst: vip, proto: layers.IPProtocolTCP, sport: 40000, dport: 80, df: true, payload: []byte("hello, rail")}
}

func innerLayers(in innerSpec) []gopacket.SerializableLayer {
	if in.dst.Is6() {
		return []gopacket.SerializableLayer{gopacket.Payload(ip6Packet(in))}
	}
	ip := &layers.IPv4{Version: 4, TTL: 61, Id: 0x1234, Protocol: in.proto,
		SrcIP: in.src.AsSlice(), DstIP: in.dst.AsSlice(), FragOffset: in.fragOffset}
	if in.df {
		ip.Flags |= layers.IPv4DontFragment
	}
	if in.mf {
		ip.Flags |= layers.IPv4MoreFragments
	}
	ls := []gopacket.SerializableLayer{ip}
	switch in.proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(in.sport), DstPort: layers.TCPPort(in.dport), Seq: 1, SYN: true, Window: 1000}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(in.sport), DstPort: layers.UDPPort(in.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	case layers.IPProtocolICMPv4:
		typ := in.icmpType
		if typ == 0 && in.icmpBody == nil {
			typ = 8
		}
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 1, Seq: 1})
		if in.icmpBody != nil {
			return append(ls, gopacket.Payload(in.icmpBody))
		}
	}
	return append(ls, gopacket.Payload(in.payload))
}

// ip6Packet builds an IPv6 packet by hand (gopacket cannot serialize every
// extension header): fixed header, the extension headers of in.extTypes
// (8 bytes each; a fragment header from in.fragOffset/mf/fragID), then the
// transport header and payload.
func ip6Packet(in innerSpec) []byte {
	var l4 []byte
	proto := uint8(in.proto)
	switch in.proto {
	case layers.IPProtocolTCP:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], in.sport)
		binary.BigEndian.PutUint16(l4[2:], in.dport)
		l4[12], l4[13] = 5<<4, 0x02 // SYN
	case layers.IPProtocolUDP:
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], in.sport)
		binary.BigEndian.PutUint16(l4[2:], in.dport)
	case layers.IPProtocolICMPv6:
		typ := in.icmpType
		if typ == 0 {
			typ = 128
		}
		l4 = append([]byte{typ, 0, 0, 0, 0, 1, 0, 1}, in.icmpBody...)
	}
	l4 = append(l4, in.payload...)
	types := in.extTypes
	if in.mf || in.fragOffset != 0 {
		types = append(append([]uint8(nil), types...), 44)
	}
	var ext []byte
	for i, typ := range types {
		next := proto
		if i+1 < len(types) {
			next = types[i+1]
		}
		h := make([]byte, 8)
		h[0] = next
		if typ == 44 {
			fo := in.fragOffset << 3
			if in.mf {
				fo |= 1
			}
			binary.BigEndian.PutUint16(h[2:], fo)
			binary.BigEndian.PutUint32(h[4:], in.fragID)
		}
		ext = append(ext, h...)
	}
	first := proto
	if len(types) > 0 {
		first = types[0]
	}
	b := make([]byte, 40, 40+len(ext)+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)+len(l4)))
	b[6], b[7] = first, 61
	s16, d16 := in.src.As16(), in.dst.As16()
	copy(b[8:], s16[:])
	copy(b[24:], d16[:])
	b = append(append(b, ext...), l4...)
	if in.proto == layers.IPProtocolTCP || in.proto == layers.IPProtocolUDP || in.proto == layers.IPProtocolICMPv6 {
		if len(ext) == 0 || types[len(types)-1] != 44 || in.fragOffset == 0 {
			at := 40 + len(ext)
			var sum uint32
			for i := 8; i < 40; i += 2 {
				sum += uint32(binary.BigEndian.Uint16(b[i:]))
			}
			sum += uint32(len(b)-at) + uint32(proto)
			ck := 16
			switch in.proto {
			case layers.IPProtocolUDP:
				ck = 6
			case layers.IPProtocolICMPv6:
				ck = 2
			}
			seg := b[at:]
			for i := 0; i+1 < len(seg); i += 2 {
				sum += uint32(binary.BigEndian.Uint16(seg[i:]))
			}
			if len(seg)%2 == 1 {
				sum += uint32(seg[len(seg)-1]) << 8
			}
			for sum>>16 != 0 {
				sum = sum&0xffff + sum>>16
			}
			binary.BigEndian.PutUint16(seg[ck:], ^uint16(sum))
		}
	}
	return b
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ethLayer(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: routerMAC, DstMAC: nodeMAC, EthernetType: t}
}

// greFrame builds Ethernet | IPv4(router → local, GRE) | GRE | inner.
func greFrame(t testing.TB, in innerSpec, gre *layers.GRE) []byte {
	if gre == nil {
		gre = &layers.GRE{Protocol: layers.EthernetTypeIPv4}
		if in.dst.Is6() {
			gre.Protocol = layers.EthernetTypeIPv6
		}
	}
	outer := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: routerIP.AsSlice(), DstIP: localAddr.AsSlice()}
	ls := append([]gopacket.SerializableLayer{ethLayer(layers.EthernetTypeIPv4), outer, gre}, innerLayers(in)...)
	return serialize(t, ls...)
}

// gre6Frame builds Ethernet | IPv6(router → local6, GRE) | GRE | inner.
func gre6Frame(t testing.TB, in innerSpec) []byte {
	gre := &layers.GRE{Protocol: layers.EthernetTypeIPv4}
	if in.dst.Is6() {
		gre.Protocol = layers.EthernetTypeIPv6
	}
	outer := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolGRE, SrcIP: routerIP6.AsSlice(), DstIP: localAddr6.AsSlice()}
	ls := append([]gopacket.SerializableLayer{ethLayer(layers.EthernetTypeIPv6), outer, gre}, innerLayers(in)...)
	return serialize(t, ls...)
}

// plainFrame builds Ethernet | inner.
func plainFrame(t testing.TB, in innerSpec) []byte {
	et := layers.EthernetTypeIPv4
	if in.dst.Is6() {
		et = layers.EthernetTypeIPv6
	}
	ls := append([]gopacket.SerializableLayer{ethLayer(et)}, innerLayers(in)...)
	return serialize(t, ls...)
}

// innerBytes returns the inner packet as serialized on its own.
func innerBytes(t testing.TB, in innerSpec) []byte {
	return serialize(t, innerLayers(in)...)
}

const testHeadroom = 256

// packetFor copies frame into a buffer with headroom, as a UMEM frame would have.
func packetFor(frame []byte) *Packet {
	buf := make([]byte, testHeadroom+len(frame))
	copy(buf[testHeadroom:], frame)
	return &Packet{Buf: buf, Off: testHeadroom, Len: len(frame)}
}
