package header

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// TestICMPTypes: the classifiers name exactly the types of gopacket's
// constants, for every type of both families.
func TestICMPTypes(t *testing.T) {
	errs4 := map[uint8]bool{layers.ICMPv4TypeDestinationUnreachable: true, layers.ICMPv4TypeTimeExceeded: true}
	errs6 := map[uint8]bool{layers.ICMPv6TypeDestinationUnreachable: true, layers.ICMPv6TypePacketTooBig: true, layers.ICMPv6TypeTimeExceeded: true}
	for typ := 0; typ < 256; typ++ {
		ty := uint8(typ)
		if IsICMPError(false, ty) != errs4[ty] || IsICMPError(true, ty) != errs6[ty] {
			t.Errorf("type %d: IsICMPError v4 %v v6 %v", ty, IsICMPError(false, ty), IsICMPError(true, ty))
		}
		if IsEchoRequest(false, ty) != (ty == layers.ICMPv4TypeEchoRequest) || IsEchoRequest(true, ty) != (ty == layers.ICMPv6TypeEchoRequest) {
			t.Errorf("type %d: IsEchoRequest v4 %v v6 %v", ty, IsEchoRequest(false, ty), IsEchoRequest(true, ty))
		}
	}
	if ICMPEchoReply != layers.ICMPv4TypeEchoReply || ICMPFragNeeded != layers.ICMPv4CodeFragmentationNeeded ||
		ICMPv6PacketTooBig != layers.ICMPv6TypePacketTooBig {
		t.Error("ICMP constants disagree with gopacket")
	}
}
