package header

import "encoding/binary"

// Ethernet is an Ethernet II header.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC (6 bytes)                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                    Source MAC (6 bytes)                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Ethernet []byte

const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12

	// EthernetLen is the length of an Ethernet II header without VLAN tags.
	EthernetLen = 14

	// EtherTypeIPv4 and EtherTypeIPv6 are the EtherType values Rail handles.
	EtherTypeIPv4 = 0x0800
	EtherTypeIPv6 = 0x86DD
	EtherTypeARP  = 0x0806
)

// MAC is a 48-bit Ethernet address.
type MAC [6]byte

// Dst returns the destination MAC address.
func (e Ethernet) Dst() (m MAC) { copy(m[:], e[ethDst:ethDst+6]); return }

// Src returns the source MAC address.
func (e Ethernet) Src() (m MAC) { copy(m[:], e[ethSrc:ethSrc+6]); return }

// Type returns the EtherType.
func (e Ethernet) Type() uint16 { return binary.BigEndian.Uint16(e[ethType:]) }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(m MAC) { copy(e[ethDst:ethDst+6], m[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(m MAC) { copy(e[ethSrc:ethSrc+6], m[:]) }

// SetType sets the EtherType.
func (e Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(e[ethType:], t) }

// String formats m as aa:bb:cc:dd:ee:ff.
func (m MAC) String() string {
	const hexdigits = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, v := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexdigits[v>>4], hexdigits[v&0xf])
	}
	return string(b)
}
