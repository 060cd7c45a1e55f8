package header

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestIPv6EncodeMatchesGopacket(t *testing.T) {
	src := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	dst := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 15: 0x11}
	b := make(IPv6, IPv6Len)
	b.Encode(IPv6Fields{TrafficClass: 0xb8, FlowLabel: 0x12345, PayloadLen: 1000, NextHeader: ProtoGRE, HopLimit: 64, Src: src, Dst: dst})
	var ip layers.IPv6
	if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	if ip.Version != 6 || ip.TrafficClass != 0xb8 || ip.FlowLabel != 0x12345 || ip.Length != 1000 ||
		ip.NextHeader != layers.IPProtocolGRE || ip.HopLimit != 64 ||
		!ip.SrcIP.Equal(net.IP(src[:])) || !ip.DstIP.Equal(net.IP(dst[:])) {
		t.Fatalf("decoded %+v", ip)
	}
	// A flow label wider than 20 bits must not spill into the traffic class.
	b.Encode(IPv6Fields{TrafficClass: 0, FlowLabel: 0xfff12345, PayloadLen: 8, NextHeader: ProtoNoNext})
	if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	if ip.Version != 6 || ip.TrafficClass != 0 || ip.FlowLabel != 0x12345 {
		t.Fatalf("flow label 0xfff12345: version %d class %#x label %#x", ip.Version, ip.TrafficClass, ip.FlowLabel)
	}
}

func TestIPv6AccessorsReadGopacket(t *testing.T) {
	ip := &layers.IPv6{Version: 6, HopLimit: 7, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP("2001:db8::7"), DstIP: net.ParseIP("2001:db8:100::10")}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ip, gopacket.Payload(make([]byte, 12))); err != nil {
		t.Fatal(err)
	}
	b := IPv6(buf.Bytes())
	src, dst := b.Src(), b.Dst()
	if b.Version() != 6 || b.PayloadLen() != 12 || b.NextHeader() != ProtoUDP || b.HopLimit() != 7 ||
		!net.IP(src[:]).Equal(ip.SrcIP) || !net.IP(dst[:]).Equal(ip.DstIP) {
		t.Fatalf("version %d payload %d next %d hop %d src %v dst %v",
			b.Version(), b.PayloadLen(), b.NextHeader(), b.HopLimit(), net.IP(src[:]), net.IP(dst[:]))
	}
}

// TestExtensionHeaders: IsExtension names exactly the five headers Rail
// walks, and ExtensionLen agrees with gopacket's decoding of each, at
// several lengths.
func TestExtensionHeaders(t *testing.T) {
	walked := map[uint8]bool{ProtoHopByHop: true, ProtoRouting: true, ProtoFragment: true, ProtoDstOpts: true, ProtoAH: true}
	for h := 0; h < 256; h++ {
		if IsExtension(uint8(h)) != walked[uint8(h)] {
			t.Errorf("IsExtension(%d) = %v", h, !walked[uint8(h)])
		}
	}
	for _, units := range []uint8{0, 2, 4} {
		for _, h := range []uint8{ProtoHopByHop, ProtoRouting, ProtoDstOpts, ProtoAH, ProtoFragment} {
			if h == ProtoAH && units == 0 {
				continue // shorter than its SPI and sequence number
			}
			ext := extension(h, units)
			got := ExtensionLen(h, ext)
			want := decodedLen(t, h, ext)
			if got != want || got != len(ext) {
				t.Errorf("header %d, length field %d: ExtensionLen %d, gopacket %d, built %d", h, units, got, want, len(ext))
			}
		}
	}
}

// extension builds an extension header of type h whose length field is
// units, followed by no next header, padded with PadN options where the
// header carries options.
func extension(h, units uint8) []byte {
	var n int
	switch h {
	case ProtoFragment:
		return []byte{ProtoNoNext, 0, 0, 0, 0, 0, 0, 1}
	case ProtoAH:
		n = (int(units) + 2) * 4
	default:
		n = (int(units) + 1) * 8
	}
	b := make([]byte, n)
	b[0], b[1] = ProtoNoNext, units
	switch h {
	case ProtoHopByHop, ProtoDstOpts:
		b[2], b[3] = 1, byte(n-4) // PadN over the rest
	case ProtoRouting:
		b[2] = 0 // type 0: addresses follow the 8-byte header; segments left 0
	}
	return b
}

// decodedLen is the length gopacket gives the extension header.
func decodedLen(t *testing.T, h uint8, ext []byte) int {
	t.Helper()
	lt := map[uint8]gopacket.LayerType{
		ProtoHopByHop: layers.LayerTypeIPv6HopByHop, ProtoRouting: layers.LayerTypeIPv6Routing,
		ProtoDstOpts: layers.LayerTypeIPv6Destination, ProtoFragment: layers.LayerTypeIPv6Fragment,
		ProtoAH: layers.LayerTypeIPSecAH,
	}[h]
	p := gopacket.NewPacket(ext, lt, gopacket.Default)
	l := p.Layer(lt)
	if l == nil {
		t.Fatalf("gopacket: header %d does not decode: %v", h, p.ErrorLayer())
	}
	return len(l.LayerContents())
}
