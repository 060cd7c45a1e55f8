package header

import (
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestIPv4EncodeMatchesGopacket(t *testing.T) {
	b := make(IPv4, IPv4MinLen)
	b.Encode(IPv4Fields{TOS: 0x10, TotalLen: 84, ID: 0xbeef, FlagsFrag: IPv4FlagDF, TTL: 64, Protocol: ProtoGRE, Src: 0x0a000002, Dst: 0x0a01000b})
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	if ip.Version != 4 || ip.IHL != 5 || ip.TOS != 0x10 || ip.Length != 84 || ip.Id != 0xbeef || ip.Flags != layers.IPv4DontFragment ||
		ip.TTL != 64 || ip.Protocol != layers.IPProtocolGRE || ip.SrcIP.String() != "10.0.0.2" || ip.DstIP.String() != "10.1.0.11" {
		t.Fatalf("decoded %+v", ip)
	}
	want := ip.Checksum
	buf := gopacket.NewSerializeBuffer()
	if err := ip.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatal(err)
	}
	if ip.Checksum != want {
		t.Fatalf("checksum %#x, gopacket computes %#x", want, ip.Checksum)
	}
	if b.Src() != 0x0a000002 || b.Dst() != 0x0a01000b || b.HeaderLen() != 20 || b.TotalLen() != 84 || b.IsFragment() {
		t.Fatal("accessors disagree with Encode")
	}
}

func TestIPv4Valid(t *testing.T) {
	good := make(IPv4, 40)
	good.Encode(IPv4Fields{TotalLen: 40, TTL: 1})
	cases := map[string]struct {
		b    IPv4
		want bool
	}{
		"good":             {good, true},
		"short":            {good[:19], false},
		"total past slice": {good[:39], false},
		"version 6":        {append(IPv4{0x65}, good[1:]...), false},
		"ihl 4":            {append(IPv4{0x44}, good[1:]...), false},
		"ihl past total":   {append(IPv4{0x4f}, good[1:]...), false},
	}
	for name, c := range cases {
		if got := c.b.Valid(); got != c.want {
			t.Errorf("%s: Valid() = %v", name, got)
		}
	}
}

func TestChecksumOddLength(t *testing.T) {
	// RFC 1071: an odd byte is padded with zero on the right.
	if got := Checksum([]byte{0x01, 0x02, 0x03}, 0); got != 0x0402 {
		t.Fatalf("got %#x", got)
	}
	if got := Checksum([]byte{0xff, 0xff, 0x00, 0x01}, 0); got != 0x0001 {
		t.Fatalf("carry not folded: %#x", got)
	}
}

func TestGRELen(t *testing.T) {
	for flags, want := range map[uint16]int{0: 4, GREFlagChecksum: 8, GREFlagKey: 8, GREFlagSequence: 8, GREFlagsSupported: 16} {
		if got := GRELen(flags); got != want {
			t.Errorf("GRELen(%#x) = %d, want %d", flags, got, want)
		}
	}
}

func TestMACString(t *testing.T) {
	if s := (MAC{0x02, 0, 0xab, 0xcd, 0xef, 0x10}).String(); s != "02:00:ab:cd:ef:10" {
		t.Fatal(s)
	}
}
