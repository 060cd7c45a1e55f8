package pipeline

import (
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
)

// testConfig is one TCP service on port 80 with three backends, a UDP
// service on every port of a second VIP, and a service with no usable backend.
func testConfig() Config {
	var bs []BackendConfig
	for i, a := range backends {
		bs = append(bs, BackendConfig{Address: a, Weight: 1, Healthy: true, ID: uint32(i)})
	}
	return Config{
		Local: localAddr,
		Seed:  42,
		Services: []ServiceConfig{
			{Name: "web", VIP: vip, Port: 80, Proto: 6, TableSize: 65537, Backends: bs},
			{Name: "dns", VIP: netip.MustParseAddr("192.0.2.53"), Port: 0, Proto: 17, TableSize: 251, Backends: bs[:1]},
			{Name: "empty", VIP: netip.MustParseAddr("192.0.2.99"), Port: 443, Proto: 6, TableSize: 251,
				Backends: []BackendConfig{{Address: backends[0], Weight: 0, Healthy: true, ID: 9}}},
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
	fragOffset   uint16
	mf           bool
	payload      []byte
}

func defaultInner() innerSpec {
	return innerSpec{src: clientIP, dst: vip, proto: layers.IPProtocolTCP, sport: 40000, dport: 80, df: true, payload: []byte("hello, rail")}
}

func innerLayers(in innerSpec) []gopacket.SerializableLayer {
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
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1})
	}
	return append(ls, gopacket.Payload(in.payload))
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
	}
	outer := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: routerIP.AsSlice(), DstIP: localAddr.AsSlice()}
	ls := append([]gopacket.SerializableLayer{ethLayer(layers.EthernetTypeIPv4), outer, gre}, innerLayers(in)...)
	return serialize(t, ls...)
}

// plainFrame builds Ethernet | inner.
func plainFrame(t testing.TB, in innerSpec) []byte {
	ls := append([]gopacket.SerializableLayer{ethLayer(layers.EthernetTypeIPv4)}, innerLayers(in)...)
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
