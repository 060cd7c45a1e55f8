package pipeline

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// checkTransmitted decodes a frame Process transmitted with gopacket and
// says what is wrong with it, if anything: it must be Ethernet, then
// either an outer IPv4 (valid header checksum, no options, lengths that
// match the frame) or IPv6 header from a local address, GRE without
// checksum or sequence whose protocol names the inner packet's family,
// and an inner IPv4 or IPv6 packet that decodes, or an ICMP
// fragmentation-needed / ICMPv6 packet-too-big reply with valid checksums
// and a non-zero MTU. It only reads.
func checkTransmitted(out []byte, local, local6 netip.Addr) error {
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.NoCopy)
	ls := pkt.Layers()
	if len(ls) < 2 {
		return fmt.Errorf("does not decode past Ethernet: %v", pkt)
	}
	var greAt int
	var proto layers.IPProtocol
	switch ip := ls[1].(type) {
	case *layers.IPv4:
		if ip.IHL != 5 || int(ip.Length) != len(out)-14 {
			return fmt.Errorf("outer IPv4 IHL %d length %d in a %d-byte frame", ip.IHL, ip.Length, len(out))
		}
		if onesSum(out[14:34]) != 0xffff {
			return fmt.Errorf("outer IPv4 checksum %#04x does not verify", ip.Checksum)
		}
		proto, greAt = ip.Protocol, 34
		if src, _ := netip.AddrFromSlice(ip.SrcIP); proto == layers.IPProtocolGRE && src != local {
			return fmt.Errorf("outer source %v, want %v", src, local)
		}
	case *layers.IPv6:
		if int(ip.Length) != len(out)-54 {
			return fmt.Errorf("outer IPv6 payload length %d in a %d-byte frame", ip.Length, len(out))
		}
		proto, greAt = ip.NextHeader, 54
		if src, _ := netip.AddrFromSlice(ip.SrcIP); proto == layers.IPProtocolGRE && src != local6 {
			return fmt.Errorf("outer source %v, want %v", src, local6)
		}
	default:
		return fmt.Errorf("layer after Ethernet is %T", ls[1])
	}
	switch proto {
	case layers.IPProtocolICMPv4:
		return checkICMPTooBig(pkt, out[34:], false, nil)
	case layers.IPProtocolICMPv6:
		return checkICMPTooBig(pkt, out[54:], true, out[14+8:14+40])
	case layers.IPProtocolGRE:
	default:
		return fmt.Errorf("outer protocol %v, want GRE or an ICMP reply", proto)
	}
	gre, _ := pkt.Layer(layers.LayerTypeGRE).(*layers.GRE)
	if gre == nil {
		return fmt.Errorf("no GRE layer: %v", pkt)
	}
	if gre.ChecksumPresent || gre.SeqPresent || gre.RoutingPresent || gre.Version != 0 {
		return fmt.Errorf("GRE flags %x: only a key may be present", out[greAt:greAt+2])
	}
	inner := gre.Payload
	if len(inner) == 0 {
		return fmt.Errorf("GRE carries nothing")
	}
	want, lt := layers.EthernetTypeIPv4, layers.LayerTypeIPv4
	switch inner[0] >> 4 {
	case 4:
	case 6:
		want, lt = layers.EthernetTypeIPv6, layers.LayerTypeIPv6
	default:
		return fmt.Errorf("inner packet of IP version %d", inner[0]>>4)
	}
	if gre.Protocol != want {
		return fmt.Errorf("GRE protocol %v for an IPv%d packet", gre.Protocol, inner[0]>>4)
	}
	ip := gopacket.NewPacket(inner, lt, gopacket.NoCopy)
	if ip.Layer(lt) == nil {
		return fmt.Errorf("inner packet does not decode as %v: %v", lt, ip.ErrorLayer())
	}
	return nil
}

// checkICMPTooBig checks an ICMP reply Process built: its type, its MTU
// and its checksum (ICMPv6: over the pseudo-header of the addresses at
// addrs).
func checkICMPTooBig(pkt gopacket.Packet, msg []byte, v6 bool, addrs []byte) error {
	if len(msg) < 8 {
		return fmt.Errorf("ICMP message of %d bytes", len(msg))
	}
	if !v6 {
		icmp, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if icmp == nil || icmp.TypeCode != layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded) {
			return fmt.Errorf("ICMP reply is not fragmentation-needed: %v", pkt)
		}
		if len(msg)%2 == 1 {
			msg = append(msg[:len(msg):len(msg)], 0) // onesSum reads whole words
		}
		if binary.BigEndian.Uint16(msg[6:]) == 0 || onesSum(msg) != 0xffff {
			return fmt.Errorf("ICMP MTU %d, checksum sum %#x", binary.BigEndian.Uint16(msg[6:]), onesSum(msg))
		}
		return nil
	}
	icmp, _ := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if icmp == nil || icmp.TypeCode.Type() != layers.ICMPv6TypePacketTooBig {
		return fmt.Errorf("ICMPv6 reply is not packet-too-big: %v", pkt)
	}
	pseudo := append(append([]byte(nil), addrs...), 0, 0, byte(len(msg)>>8), byte(len(msg)), 0, 0, 0, 58)
	if len(msg)%2 == 1 {
		msg = append(msg[:len(msg):len(msg)], 0) // onesSum reads whole words
	}
	if mtu := binary.BigEndian.Uint32(msg[4:]); mtu < 1280 || onesSum(append(pseudo, msg...)) != 0xffff {
		return fmt.Errorf("ICMPv6 MTU %d, checksum sum %#x", mtu, onesSum(append(pseudo, msg...)))
	}
	return nil
}

// TestCheckTransmitted: the checker FuzzProcess relies on accepts what
// Process transmits and rejects each kind of damage to it.
func TestCheckTransmitted(t *testing.T) {
	c := testConfig()
	c.MTU = 1500
	w := newTestWorker(t, c)
	egress := func(frame []byte) []byte {
		p := packetFor(frame)
		if r := w.Process(p); r.Verdict != Tx {
			t.Fatalf("not transmitted: %v", r)
		}
		return p.Buf[p.Off : p.Off+p.Len]
	}
	gre4 := egress(greFrame(t, defaultInner(), nil))
	gre6 := egress(greFrame(t, v6Inner(), nil))
	mtu := mtuCases(t)
	icmp4, icmp6 := egress(mtu[0].frame), egress(mtu[2].frame)
	for name, f := range map[string][]byte{"gre4": gre4, "gre6": gre6, "icmp4": icmp4, "icmp6": icmp6} {
		if err := checkTransmitted(f, c.Local, c.Local6); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	damage := []struct {
		name string
		f    []byte
		at   int
	}{
		{"outer IPv4 checksum", gre4, 14 + 10},
		{"outer IPv4 length", gre4, 14 + 3},
		{"outer source", gre4, 14 + 15},
		{"GRE protocol", gre4, 34 + 3},
		{"GRE sequence bit", gre4, 34},
		{"outer IPv6 payload length", gre6, 14 + 5},
		{"inner version", gre4, 38},
		{"ICMP checksum", icmp4, 34 + 2},
		{"ICMP type", icmp4, 34},
		{"ICMPv6 checksum", icmp6, 54 + 2},
	}
	for _, d := range damage {
		f := append([]byte(nil), d.f...)
		f[d.at] ^= 0x10
		if err := checkTransmitted(f, c.Local, c.Local6); err == nil {
			t.Errorf("%s damaged: accepted", d.name)
		}
	}
}
