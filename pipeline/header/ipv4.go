package header

import "encoding/binary"

// IPv4 is an IPv4 header (RFC 791).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv4 []byte

const (
	ipVersIHL   = 0
	ipTOS       = 1
	ipTotalLen  = 2
	ipID        = 4
	ipFlagsFrag = 6
	ipTTL       = 8
	ipProtocol  = 9
	ipChecksum  = 10
	ipSrc       = 12
	ipDst       = 16

	// IPv4MinLen is the length of an IPv4 header without options.
	IPv4MinLen = 20

	// IPv4 flag and fragment bits of the 16-bit flags/fragment-offset word.
	IPv4FlagDF     = 0x4000
	IPv4FlagMF     = 0x2000
	IPv4FragOffset = 0x1fff

	// Protocol numbers Rail looks at.
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoGRE  = 47
)

// Version returns the IP version nibble.
func (b IPv4) Version() uint8 { return b[ipVersIHL] >> 4 }

// HeaderLen returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLen() int { return int(b[ipVersIHL]&0xf) << 2 }

// TotalLen returns the Total Length field.
func (b IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(b[ipTotalLen:])) }

// ID returns the Identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipID:]) }

// FlagsFrag returns the 16-bit flags and fragment offset word.
func (b IPv4) FlagsFrag() uint16 { return binary.BigEndian.Uint16(b[ipFlagsFrag:]) }

// IsFragment reports whether the packet is a fragment (MF set or offset ≠ 0).
func (b IPv4) IsFragment() bool { return b.FlagsFrag()&(IPv4FlagMF|IPv4FragOffset) != 0 }

// TTL returns the Time to Live.
func (b IPv4) TTL() uint8 { return b[ipTTL] }

// Protocol returns the transport protocol number.
func (b IPv4) Protocol() uint8 { return b[ipProtocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipChecksum:]) }

// Src returns the source address.
func (b IPv4) Src() uint32 { return binary.BigEndian.Uint32(b[ipSrc:]) }

// Dst returns the destination address.
func (b IPv4) Dst() uint32 { return binary.BigEndian.Uint32(b[ipDst:]) }

// Valid reports whether b holds a well-formed IPv4 header whose total length
// fits in b: version 4, IHL ≥ 5, header and total length inside b.
func (b IPv4) Valid() bool {
	_, _, ok := b.Lengths()
	return ok
}

// Lengths returns the header length and the total length, and whether b
// is Valid: the parser's check and its two fields in one reading.
func (b IPv4) Lengths() (hl, tl int, ok bool) {
	if len(b) < IPv4MinLen {
		return 0, 0, false
	}
	h := (*[IPv4MinLen]byte)(b)
	hl, tl = int(h[ipVersIHL]&0xf)<<2, int(binary.BigEndian.Uint16(h[ipTotalLen:]))
	return hl, tl, h[ipVersIHL]>>4 == 4 && hl >= IPv4MinLen && hl <= tl && tl <= len(b)
}

// Encode writes a 20-byte header without options and a valid checksum.
func (b IPv4) Encode(f IPv4Fields) {
	b[ipVersIHL] = 0x45
	b[ipTOS] = f.TOS
	binary.BigEndian.PutUint16(b[ipTotalLen:], f.TotalLen)
	binary.BigEndian.PutUint16(b[ipID:], f.ID)
	binary.BigEndian.PutUint16(b[ipFlagsFrag:], f.FlagsFrag)
	b[ipTTL] = f.TTL
	b[ipProtocol] = f.Protocol
	binary.BigEndian.PutUint16(b[ipChecksum:], 0)
	binary.BigEndian.PutUint32(b[ipSrc:], f.Src)
	binary.BigEndian.PutUint32(b[ipDst:], f.Dst)
	binary.BigEndian.PutUint16(b[ipChecksum:], ^Checksum(b[:IPv4MinLen], 0))
}

// IPv4Fields are the fields of an option-less IPv4 header, for Encode.
type IPv4Fields struct {
	TOS       uint8
	TotalLen  uint16
	ID        uint16
	FlagsFrag uint16
	TTL       uint8
	Protocol  uint8
	Src, Dst  uint32
}

// Checksum returns the ones' complement sum of b folded to 16 bits, starting
// from initial. The Internet checksum of b is ^Checksum(b, 0).
func Checksum(b []byte, initial uint32) uint16 {
	sum := uint64(initial)
	for len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
