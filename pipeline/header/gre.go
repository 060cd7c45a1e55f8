package header

import "encoding/binary"

// GRE is a GRE header (RFC 2784 with the RFC 2890 key and sequence extensions).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|C|R|K|S|s|Recur|  Flags  | Ver |         Protocol Type         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Checksum (optional)      |       Reserved1 (Optional)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Key (optional)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sequence Number (Optional)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type GRE []byte

const (
	greFlags    = 0
	greProtocol = 2

	// GREMinLen is the length of a GRE header without optional fields.
	GREMinLen = 4
	// GREKeyLen is the length of the optional key field (RFC 2890), which
	// Rail's egress uses for a second hop.
	GREKeyLen = 4

	// GRE flag bits in the first 16-bit word.
	GREFlagChecksum = 0x8000
	GREFlagRouting  = 0x4000
	GREFlagKey      = 0x2000
	GREFlagSequence = 0x1000

	// GREFlagsSupported are the only bits Rail accepts on ingress; anything
	// else (routing, strict source route, recursion, reserved, version ≠ 0)
	// is unsupported.
	GREFlagsSupported = GREFlagChecksum | GREFlagKey | GREFlagSequence
)

// Flags returns the first 16-bit word: flag bits and version.
func (g GRE) Flags() uint16 { return binary.BigEndian.Uint16(g[greFlags:]) }

// Protocol returns the Protocol Type (an EtherType).
func (g GRE) Protocol() uint16 { return binary.BigEndian.Uint16(g[greProtocol:]) }

// GRELen returns the header length implied by flags: 4 bytes plus 4 for each
// of checksum, key and sequence number that is present.
func GRELen(flags uint16) int {
	n := GREMinLen
	if flags&GREFlagChecksum != 0 {
		n += 4
	}
	if flags&GREFlagKey != 0 {
		n += 4
	}
	if flags&GREFlagSequence != 0 {
		n += 4
	}
	return n
}

// Encode writes a 4-byte GRE header with no flags, version 0 and the given
// protocol.
func (g GRE) Encode(protocol uint16) {
	binary.BigEndian.PutUint16(g[greFlags:], 0)
	binary.BigEndian.PutUint16(g[greProtocol:], protocol)
}
