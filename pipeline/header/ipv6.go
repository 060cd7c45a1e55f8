package header

import "encoding/binary"

// IPv6 is an IPv6 fixed header (RFC 8200).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Source Address (16 bytes)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination Address (16 bytes)               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv6 []byte

const (
	ip6VersTCFlow = 0
	ip6PayloadLen = 4
	ip6NextHeader = 6
	ip6HopLimit   = 7
	ip6Src        = 8
	ip6Dst        = 24

	// IPv6Len is the length of the fixed IPv6 header.
	IPv6Len = 40

	// IPv6 next-header values Rail looks at.
	ProtoHopByHop = 0
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoAH       = 51
	ProtoICMPv6   = 58
	ProtoNoNext   = 59
	ProtoDstOpts  = 60

	// IPv6FragmentLen is the length of the fragment extension header.
	IPv6FragmentLen = 8
)

// Version returns the IP version nibble.
func (b IPv6) Version() uint8 { return b[0] >> 4 }

// PayloadLen returns the Payload Length field.
func (b IPv6) PayloadLen() int { return int(binary.BigEndian.Uint16(b[ip6PayloadLen:])) }

// NextHeader returns the Next Header field.
func (b IPv6) NextHeader() uint8 { return b[ip6NextHeader] }

// HopLimit returns the Hop Limit field.
func (b IPv6) HopLimit() uint8 { return b[ip6HopLimit] }

// Src returns the source address.
func (b IPv6) Src() (a [16]byte) { copy(a[:], b[ip6Src:ip6Src+16]); return }

// Dst returns the destination address.
func (b IPv6) Dst() (a [16]byte) { copy(a[:], b[ip6Dst:ip6Dst+16]); return }

// SrcWords returns the source address as two big-endian words (high, low):
// what a flow key holds, without a 16-byte copy.
func (b IPv6) SrcWords() (hi, lo uint64) {
	return binary.BigEndian.Uint64(b[ip6Src:]), binary.BigEndian.Uint64(b[ip6Src+8:])
}

// DstWords returns the destination address as two big-endian words.
func (b IPv6) DstWords() (hi, lo uint64) {
	return binary.BigEndian.Uint64(b[ip6Dst:]), binary.BigEndian.Uint64(b[ip6Dst+8:])
}

// IPv6Fields are the fields of an IPv6 fixed header, for Encode.
type IPv6Fields struct {
	TrafficClass uint8
	FlowLabel    uint32
	PayloadLen   uint16
	NextHeader   uint8
	HopLimit     uint8
	Src, Dst     [16]byte
}

// Encode writes the 40-byte fixed header.
func (b IPv6) Encode(f IPv6Fields) {
	binary.BigEndian.PutUint32(b[ip6VersTCFlow:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[ip6PayloadLen:], f.PayloadLen)
	b[ip6NextHeader] = f.NextHeader
	b[ip6HopLimit] = f.HopLimit
	copy(b[ip6Src:], f.Src[:])
	copy(b[ip6Dst:], f.Dst[:])
}

// IsExtension reports whether next header value h is an extension header
// that Rail walks over (hop-by-hop, routing, fragment, destination
// options, authentication).
func IsExtension(h uint8) bool {
	switch h {
	case ProtoHopByHop, ProtoRouting, ProtoFragment, ProtoDstOpts, ProtoAH:
		return true
	}
	return false
}

// ExtensionLen returns the length of the extension header of type h that
// starts with ext (at least 2 bytes).
func ExtensionLen(h uint8, ext []byte) int {
	switch h {
	case ProtoFragment:
		return IPv6FragmentLen
	case ProtoAH:
		return (int(ext[1]) + 2) * 4
	}
	return (int(ext[1]) + 1) * 8
}
